//! Key and trust stores as ZooKeeper's `ssl.keyStore.*` / `ssl.trustStore.*`
//! settings name them: Java's JKS (read here), PKCS#12 (`p12-keystore`) and
//! PEM files, with the type taken from `*.type` or else from the file name's
//! extension, as ZooKeeper's `KeyStoreFileType.fromPropertyValueOrFileName`
//! (`.jks`, `.p12` / `.pfx`, `.pem`).
//!
//! JKS, as Java's `sun.security.provider.JavaKeyStore` writes it (all
//! integers big-endian): magic `0xFEEDFEED`, version (1 or 2), entry count;
//! each entry a tag (1 = private key, 2 = trusted certificate), an alias
//! (u16 length + modified UTF-8) and a u64 date, then for a private key its
//! protected form (u32 length + DER `EncryptedPrivateKeyInfo`) and its chain
//! (u32 count, each certificate as `[UTF "X.509" in version 2] u32 length +
//! DER`), for a trusted certificate one certificate; last, a SHA-1 over the
//! password's UTF-16BE bytes, the words "Mighty Aphrodite" and everything
//! before it. A private key is protected by Sun's `KeyProtector`
//! (OID 1.3.6.1.4.1.42.2.17.1.1): 20 bytes of salt, the PKCS#8 key XORed
//! with the stream SHA-1(password ‖ previous block), the first block's
//! "previous" being the salt, then SHA-1(password ‖ key) to check it.
//!
//! Every length is checked against the bytes there: a damaged file is an
//! error naming what did not parse, never a panic.

use std::path::Path;

use sha1::{Digest, Sha1};

/// What a store holds for TLS: the first private key with its certificate
/// chain (leaf first), and every certificate it trusts.
#[derive(Debug, Default)]
pub struct Store {
    /// A private key (PKCS#8, PKCS#1 or SEC1 DER) and its chain.
    pub key: Option<(rustls::pki_types::PrivateKeyDer<'static>, Vec<Vec<u8>>)>,
    /// Trusted certificates (DER).
    pub trusted: Vec<Vec<u8>>,
}

/// A store's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Java's JKS.
    Jks,
    /// PKCS#12.
    Pkcs12,
    /// PEM: certificates and a private key.
    Pem,
}

impl Kind {
    /// The type from an `ssl.*.type` value (case-insensitive), else from
    /// `path`'s extension.
    pub fn of(explicit: Option<&str>, path: &Path) -> Result<Kind, String> {
        let name = match explicit {
            Some(t) => t.to_ascii_uppercase(),
            None => {
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                match ext.as_str() {
                    "jks" => "JKS".into(),
                    "p12" | "pfx" => "PKCS12".into(),
                    "pem" => "PEM".into(),
                    _ => {
                        return Err(format!(
                            "Unable to auto-detect store file type from file name: {} (set its \
                             .type to JKS, PKCS12 or PEM)",
                            path.display()
                        ));
                    }
                }
            }
        };
        match name.as_str() {
            "JKS" => Ok(Kind::Jks),
            "PKCS12" => Ok(Kind::Pkcs12),
            "PEM" => Ok(Kind::Pem),
            other => Err(format!(
                "store type {other} is not supported (JKS, PKCS12 or PEM)"
            )),
        }
    }
}

/// Reads the store at `path`.
pub fn load(path: &Path, kind: Kind, password: &str) -> Result<Store, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let parsed = match kind {
        Kind::Jks => parse_jks(&bytes, password),
        Kind::Pkcs12 => parse_pkcs12(&bytes, password),
        Kind::Pem => parse_pem(&bytes),
    };
    parsed.map_err(|e| format!("{}: {e}", path.display()))
}

/// A JKS store (module doc). An empty password skips the integrity check,
/// as Java's `KeyStore.load` with a null password (a trust store needs none),
/// but a private key then cannot be recovered.
pub fn parse_jks(bytes: &[u8], password: &str) -> Result<Store, String> {
    const MAGIC: u32 = 0xFEED_FEED;
    const JCEKS_MAGIC: u32 = 0xCECE_CECE;
    let pw: Vec<u8> = password.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let body_len = bytes
        .len()
        .checked_sub(20)
        .ok_or("too short for a JKS keystore")?;
    let mut r = Cursor {
        bytes: &bytes[..body_len],
        at: 0,
    };
    match r.u32()? {
        MAGIC => {}
        JCEKS_MAGIC => return Err("JCEKS keystores are not supported (use JKS or PKCS12)".into()),
        _ => return Err("not a JKS keystore (bad magic)".into()),
    }
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(format!("unsupported JKS version {version}"));
    }
    if !password.is_empty() {
        let mut h = Sha1::new();
        h.update(&pw);
        h.update(b"Mighty Aphrodite");
        h.update(&bytes[..body_len]);
        if h.finalize().as_slice() != &bytes[body_len..] {
            return Err("Keystore was tampered with, or password was incorrect".into());
        }
    }
    let count = r.u32()?;
    let mut store = Store::default();
    for _ in 0..count {
        let tag = r.u32()?;
        r.utf()?; // alias
        r.take(8)?; // date
        match tag {
            1 => {
                let protected = r.block()?;
                let n = r.u32()?;
                let mut chain = Vec::new();
                for _ in 0..n {
                    chain.push(r.cert(version)?.to_vec());
                }
                if store.key.is_none() {
                    if password.is_empty() {
                        return Err("a private key needs the keystore's password".into());
                    }
                    let pkcs8 = recover_key(protected, &pw)?;
                    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(pkcs8.into());
                    store.key = Some((key, chain));
                }
            }
            2 => store.trusted.push(r.cert(version)?.to_vec()),
            3 => return Err("secret-key entries are JCEKS, not JKS".into()),
            t => return Err(format!("unknown JKS entry tag {t}")),
        }
    }
    if r.at != r.bytes.len() {
        return Err(format!(
            "{} bytes after the last entry",
            r.bytes.len() - r.at
        ));
    }
    Ok(store)
}

/// Sun's KeyProtector (module doc): the PKCS#8 key inside the DER
/// `EncryptedPrivateKeyInfo` `protected`.
fn recover_key(protected: &[u8], pw: &[u8]) -> Result<Vec<u8>, String> {
    const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];
    let (info, _) = der(protected, 0x30).ok_or("bad EncryptedPrivateKeyInfo")?;
    let (alg, rest) = der(info, 0x30).ok_or("bad key algorithm")?;
    let (oid, _) = der(alg, 0x06).ok_or("bad key algorithm OID")?;
    if oid != KEY_PROTECTOR_OID {
        return Err("private key protected by an algorithm other than Sun's KeyProtector".into());
    }
    let (data, _) = der(rest, 0x04).ok_or("bad encrypted key")?;
    if data.len() < 40 {
        return Err("encrypted key too short".into());
    }
    let (salt, rest) = data.split_at(20);
    let (cipher, check) = rest.split_at(rest.len() - 20);
    let mut key = Vec::with_capacity(cipher.len());
    let mut block = salt.to_vec();
    for chunk in cipher.chunks(20) {
        let mut h = Sha1::new();
        h.update(pw);
        h.update(&block);
        block = h.finalize().to_vec();
        key.extend(chunk.iter().zip(&block).map(|(c, k)| c ^ k));
    }
    let mut h = Sha1::new();
    h.update(pw);
    h.update(&key);
    if h.finalize().as_slice() != check {
        return Err("Cannot recover key (wrong password?)".into());
    }
    Ok(key)
}

/// The contents of the DER element of `tag` at the start of `bytes`, and
/// what follows it.
fn der(bytes: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = bytes.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn utf(&mut self) -> Result<&'a [u8], String> {
        let b = self.take(2)?;
        self.take(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn block(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn cert(&mut self, version: u32) -> Result<&'a [u8], String> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != b"X.509" {
                return Err(format!(
                    "certificate type {} is not X.509",
                    String::from_utf8_lossy(kind)
                ));
            }
        }
        self.block()
    }
}

/// A PKCS#12 store: its first key with its chain, and its certificates
/// (those of key entries are not trusted, as Java's).
fn parse_pkcs12(bytes: &[u8], password: &str) -> Result<Store, String> {
    let ks = p12_keystore::KeyStore::from_pkcs12(bytes, password)
        .map_err(|e| format!("cannot read the PKCS12 store: {e}"))?;
    let mut store = Store::default();
    for (_, entry) in ks.entries() {
        match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) if store.key.is_none() => {
                let key = rustls::pki_types::PrivateKeyDer::Pkcs8(chain.key().to_vec().into());
                let certs = chain.chain().iter().map(|c| c.as_der().to_vec()).collect();
                store.key = Some((key, certs));
            }
            p12_keystore::KeyStoreEntry::PrivateKeyChain(_) => {}
            p12_keystore::KeyStoreEntry::Certificate(c) => store.trusted.push(c.as_der().to_vec()),
        }
    }
    Ok(store)
}

/// A PEM file: its certificates (the chain of its key, and trusted when it
/// is a trust store) and its first private key. Encrypted keys are refused.
fn parse_pem(bytes: &[u8]) -> Result<Store, String> {
    use rustls::pki_types::pem::{PemObject, SectionKind};
    let mut store = Store::default();
    let mut certs = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        let (kind, der) = item.map_err(|e| format!("cannot read the PEM file: {e}"))?;
        use rustls::pki_types::PrivateKeyDer as K;
        let key = match kind {
            SectionKind::Certificate => {
                certs.push(der);
                continue;
            }
            SectionKind::PrivateKey => K::Pkcs8(der.into()),
            SectionKind::RsaPrivateKey => K::Pkcs1(der.into()),
            SectionKind::EcPrivateKey => K::Sec1(der.into()),
            _ => continue,
        };
        if store.key.is_none() {
            store.key = Some((key, Vec::new()));
        }
    }
    if bytes
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|w| w == b"ENCRYPTED PRIVATE KEY")
        && store.key.is_none()
    {
        return Err("encrypted PEM private keys are not supported".into());
    }
    if let Some((_, chain)) = store.key.as_mut() {
        chain.clone_from(&certs);
    }
    store.trusted = certs;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/tls")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_keytool_jks_keystore_gives_its_key_and_chain() {
        let store = parse_jks(&fixture("server.jks"), "apassword").unwrap();
        let (key, chain) = store.key.expect("a key");
        assert!(matches!(key, rustls::pki_types::PrivateKeyDer::Pkcs8(_)));
        assert_eq!(chain.len(), 2, "leaf and CA");
        assert_eq!(store.trusted.len(), 1, "the CA imported as a trusted entry");
        // That the key fits the leaf: `tls::tests::acceptors_build_from_each_store_type`.
    }

    #[test]
    fn a_wrong_password_is_named() {
        let err = parse_jks(&fixture("server.jks"), "wrong").unwrap_err();
        assert!(err.contains("password was incorrect"), "{err}");
        let err = parse_pkcs12(&fixture("server.p12"), "wrong").unwrap_err();
        assert!(err.contains("PKCS12"), "{err}");
    }

    #[test]
    fn a_jks_trust_store_reads_without_a_password() {
        let store = parse_jks(&fixture("truststore.jks"), "").unwrap();
        assert!(store.key.is_none());
        assert_eq!(store.trusted.len(), 1);
    }

    #[test]
    fn pkcs12_and_pem_stores_give_the_same_material() {
        let jks = parse_jks(&fixture("server.jks"), "apassword").unwrap();
        let p12 = parse_pkcs12(&fixture("server.p12"), "apassword").unwrap();
        let pem = parse_pem(&fixture("server-key.pem")).unwrap();
        let leaf = |s: &Store| s.key.as_ref().unwrap().1[0].clone();
        assert_eq!(leaf(&jks), leaf(&p12));
        assert_eq!(leaf(&jks), leaf(&pem));
        let key = |s: &Store| s.key.as_ref().unwrap().0.secret_der().to_vec();
        assert_eq!(key(&jks), key(&p12));
        assert_eq!(key(&jks), key(&pem));
    }

    #[test]
    fn types_come_from_the_setting_or_the_extension() {
        let p = Path::new("/x/store.P12");
        assert_eq!(Kind::of(None, p), Ok(Kind::Pkcs12));
        assert_eq!(Kind::of(Some("jks"), p), Ok(Kind::Jks));
        assert_eq!(Kind::of(None, Path::new("a.pem")), Ok(Kind::Pem));
        assert!(Kind::of(None, Path::new("a.store")).is_err());
        assert!(Kind::of(Some("BCFKS"), p).is_err());
    }

    /// No damaged store panics: every truncation and every flipped byte of a
    /// real keystore is an error or, for bytes the format does not check
    /// (with no password), a store.
    #[test]
    fn damaged_stores_are_errors() {
        let good = fixture("server.jks");
        for cut in 0..good.len() {
            assert!(parse_jks(&good[..cut], "apassword").is_err());
            let _ = parse_jks(&good[..cut], "");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            assert!(parse_jks(&bad, "apassword").is_err(), "byte {i}");
            let _ = parse_jks(&bad, "");
        }
        // Random bodies behind JKS's magic and version, and random PEM.
        let mut seed: u64 = 0x6b73_7374;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2000 {
            let len = (next() % 300) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 {
                bytes.splice(0..0, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
                let _ = parse_jks(&bytes, "");
                let _ = parse_jks(&bytes, "apassword");
            } else {
                bytes.splice(0..0, *b"-----BEGIN PRIVATE KEY-----\n");
                let _ = parse_pem(&bytes);
            }
        }
        for bytes in [
            &b""[..],
            b"\xfe\xed\xfe\xed",
            b"-----BEGIN CERTIFICATE-----\n!!\n",
        ] {
            let _ = parse_jks(bytes, "x");
            let _ = parse_pem(bytes);
            let _ = parse_pkcs12(bytes, "x");
        }
    }
}
