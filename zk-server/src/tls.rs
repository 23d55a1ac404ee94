//! TLS on the secure client port (`secureClientPort`), as ZooKeeper's
//! `NettyServerCnxnFactory` with its default `X509AuthenticationProvider`:
//!
//! - the server's key and certificate chain come from `ssl.keyStore.*`, the
//!   certificates it trusts for clients from `ssl.trustStore.*` (JKS, PKCS12
//!   or PEM: [`crate::keystore`]); without a trust store, the system's CA
//!   bundle, as Java's default trust manager uses its own;
//! - `ssl.clientAuth`: `need` (the default) refuses a client without a
//!   trusted certificate, `want` asks for one and takes the client without,
//!   `none` does not ask;
//! - a client's trusted certificate authenticates its connection as
//!   `x509:<subject DN>` (RFC 2253, as Java's `X500Principal.getName()`), and
//!   also as `super:<DN>` when it is `X509AuthenticationProvider.superUser`;
//! - a failed handshake closes that connection and counts in
//!   `zk_auth_failed_count`, as ZooKeeper's `CertificateVerifier`.
//!
//! The TLS engine is rustls with the ring provider (TLS 1.2 and 1.3). Java
//! accepts an X.509 version 1 client certificate (kazoo's test harness makes
//! such), which WebPKI refuses; [`Verifier`] takes one when a trusted
//! certificate signed it directly and it is within its validity.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::keystore::{self, Kind};

/// `ssl.clientAuth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Do not ask for a client certificate.
    None,
    /// Ask; take the client without one.
    Want,
    /// Ask; refuse the client without a trusted one (ZooKeeper's default).
    #[default]
    Need,
}

impl ClientAuth {
    /// From a setting's value, as ZooKeeper's `ClientAuth.fromPropertyValue`
    /// (case-insensitive).
    pub fn parse(value: &str) -> Option<ClientAuth> {
        match value.to_ascii_lowercase().as_str() {
            "none" => Some(ClientAuth::None),
            "want" => Some(ClientAuth::Want),
            "need" => Some(ClientAuth::Need),
            _ => None,
        }
    }
}

/// One store's settings (`ssl.keyStore.*` or `ssl.trustStore.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    /// `.location`.
    pub location: Option<PathBuf>,
    /// `.password` (empty when unset).
    pub password: String,
    /// `.type`, else from the file name.
    pub kind: Option<String>,
}

impl StoreSettings {
    fn load(&self, what: &str) -> Result<Option<keystore::Store>, String> {
        let Some(path) = &self.location else {
            return Ok(None);
        };
        let kind = Kind::of(self.kind.as_deref(), path).map_err(|e| format!("{what}: {e}"))?;
        keystore::load(path, kind, &self.password)
            .map(Some)
            .map_err(|e| format!("{what}: {e}"))
    }
}

/// The TLS settings of the secure client port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `ssl.keyStore.*`: the server's key and chain (required).
    pub key_store: StoreSettings,
    /// `ssl.trustStore.*`: the certificates clients' are checked against.
    pub trust_store: StoreSettings,
    /// `ssl.clientAuth`.
    pub client_auth: ClientAuth,
    /// `X509AuthenticationProvider.superUser`: the subject DN that also
    /// authenticates as `super`.
    pub super_user: Option<String>,
    /// `ssl.enabledProtocols` (comma-separated: TLSv1.2, TLSv1.3), when set.
    pub protocols: Option<String>,
    /// `ssl.ciphersuites` (comma-separated IANA names, as Java's), when set.
    pub cipher_suites: Option<String>,
}

/// The names in a comma-separated setting.
fn names(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|n| !n.is_empty())
}

/// The TLS versions `ssl.enabledProtocols` names (all of rustls's when
/// unset): TLSv1.2 and TLSv1.3; the older ones Java may list are not
/// built (a warning), and a list naming neither is an error.
fn protocol_versions(
    list: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let Some(list) = list else {
        return Ok(rustls::DEFAULT_VERSIONS.to_vec());
    };
    let mut versions = Vec::new();
    for name in names(list) {
        match name {
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            other => warnings.push(format!(
                "ssl.enabledProtocols: {other} is not offered (TLSv1.2 and TLSv1.3 are)"
            )),
        }
    }
    if versions.is_empty() {
        return Err(format!(
            "ssl.enabledProtocols={list}: none of TLSv1.2 and TLSv1.3 is enabled"
        ));
    }
    Ok(versions)
}

/// `provider` keeping only the cipher suites `ssl.ciphersuites` names (its
/// own when unset); a name rustls does not offer is a warning, a list
/// naming none it offers is an error.
fn restrict_suites(
    provider: &mut rustls::crypto::CryptoProvider,
    list: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let Some(list) = list else {
        return Ok(());
    };
    let mut kept = Vec::new();
    for name in names(list) {
        match provider
            .cipher_suites
            .iter()
            .find(|s| s.suite().as_str() == Some(name))
        {
            Some(suite) => kept.push(*suite),
            None => warnings.push(format!("ssl.ciphersuites: {name} is not offered")),
        }
    }
    if kept.is_empty() {
        return Err(format!(
            "ssl.ciphersuites={list}: none of these cipher suites is offered"
        ));
    }
    provider.cipher_suites = kept;
    Ok(())
}

/// Where the system's CA bundle is (Debian's ca-certificates), the trust
/// store when none is set.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The secure port's TLS: a rustls configuration built once at start.
#[derive(Clone)]
pub struct Acceptor {
    config: Arc<rustls::ServerConfig>,
    client_auth: ClientAuth,
    super_user: Option<String>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

impl Acceptor {
    /// Builds the TLS configuration: an error names the store or setting
    /// that is wrong.
    pub fn new(settings: &TlsSettings) -> Result<Acceptor, String> {
        let mut warnings = Vec::new();
        let versions = protocol_versions(settings.protocols.as_deref(), &mut warnings)?;
        let mut provider = provider();
        restrict_suites(
            &mut provider,
            settings.cipher_suites.as_deref(),
            &mut warnings,
        )?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let provider = Arc::new(provider);
        let key_store = settings
            .key_store
            .load("ssl.keyStore")?
            .ok_or("secureClientPort needs ssl.keyStore.location")?;
        let (key, chain) = key_store
            .key
            .ok_or("ssl.keyStore: the store holds no private key")?;
        let chain: Vec<CertificateDer<'static>> = chain.into_iter().map(Into::into).collect();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("TLS: {e} (ssl.enabledProtocols, ssl.ciphersuites)"))?;
        let builder = if settings.client_auth == ClientAuth::None {
            builder.with_no_client_auth()
        } else {
            let trusted = match settings.trust_store.load("ssl.trustStore")? {
                Some(store) => store.trusted,
                None => system_cas()?,
            };
            if trusted.is_empty() {
                return Err("ssl.trustStore: the store holds no trusted certificate".into());
            }
            builder.with_client_cert_verifier(Arc::new(Verifier::new(
                trusted,
                settings.client_auth,
                provider.clone(),
            )?))
        };
        let certified = certified_key(chain, key, &provider)?;
        let config = builder.with_cert_resolver(Arc::new(OneCert(Arc::new(certified))));
        Ok(Acceptor {
            config: Arc::new(config),
            client_auth: settings.client_auth,
            super_user: settings.super_user.clone(),
        })
    }

    /// A new connection's TLS state.
    pub fn accept(&self) -> Result<rustls::ServerConnection, rustls::Error> {
        rustls::ServerConnection::new(self.config.clone())
    }

    /// The auth ids of a connection whose handshake is done: `x509:<DN>` of
    /// its verified certificate (and `super:<DN>` for the super user), none
    /// without one.
    pub fn auth_ids(&self, conn: &rustls::ServerConnection) -> Vec<zk_jute::Id> {
        if self.client_auth == ClientAuth::None {
            return Vec::new();
        }
        let Some(dn) = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| subject_dn(c))
        else {
            return Vec::new();
        };
        let mut ids = vec![zk_jute::Id {
            scheme: "x509".into(),
            id: dn.clone(),
        }];
        if self.super_user.as_deref() == Some(dn.as_str()) {
            ids.push(zk_jute::Id {
                scheme: "super".into(),
                id: dn,
            });
        }
        ids
    }
}

/// The server's chain and key, checked to belong together (the leaf's
/// public key is the key's). rustls's own `with_single_cert` does this
/// through WebPKI, which refuses a version-1 certificate (Java serves one:
/// kazoo's test harness makes its server's so).
fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<rustls::sign::CertifiedKey, String> {
    use x509_parser::prelude::FromDer;
    let leaf = chain
        .first()
        .ok_or("ssl.keyStore: the private key has no certificate")?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(leaf)
        .map_err(|e| format!("ssl.keyStore: the key's certificate does not parse: {e}"))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("ssl.keyStore: {e}"))?;
    if let Some(spki) = signing.public_key()
        && spki.as_ref() != cert.public_key().raw
    {
        return Err("ssl.keyStore: the private key does not match its certificate".into());
    }
    Ok(rustls::sign::CertifiedKey::new(chain, signing))
}

/// Every handshake gets the one chain and key.
#[derive(Debug)]
struct OneCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for OneCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// rustls's ring provider. (Deprecated since rustls 0.23.48 for want of
/// post-quantum key exchange, which the Java 8-17 clients of ZooKeeper 3.8 do
/// not offer either; the alternative, aws-lc-rs, builds a C library with
/// cmake.)
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn system_cas() -> Result<Vec<Vec<u8>>, String> {
    let path = std::path::Path::new(SYSTEM_CA_BUNDLE);
    if !path.exists() {
        return Err(format!(
            "ssl.clientAuth asks for client certificates but neither ssl.trustStore.location nor \
             {SYSTEM_CA_BUNDLE} is there to check them"
        ));
    }
    Ok(keystore::load(path, Kind::Pem, "")?.trusted)
}

/// The subject of a DER certificate as Java's `X500Principal.getName()`
/// (RFC 2253): the last RDN first, `,` between RDNs and `+` within one, the
/// keywords CN, C, L, ST, O, OU, STREET, DC and UID, every other attribute
/// as its OID and `#` with its value's DER in hex; `,+"\<>;` escaped, as are
/// a leading `#` or space and a trailing space.
pub fn subject_dn(cert: &[u8]) -> Option<String> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert).ok()?;
    let mut rdns: Vec<String> = Vec::new();
    for rdn in cert.subject().iter() {
        let avas: Vec<String> = rdn.iter().map(ava_text).collect();
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

fn ava_text(ava: &x509_parser::x509::AttributeTypeAndValue<'_>) -> String {
    let oid = ava.attr_type().to_id_string();
    let keyword = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    match (keyword, ava.as_str()) {
        (Some(k), Ok(v)) => format!("{k}={}", escape_value(v)),
        _ => {
            let value = ava.attr_value();
            let header = &value.header;
            let mut der = vec![
                (header.class() as u8) << 6
                    | u8::from(header.is_constructed()) << 5
                    | (header.tag().0 as u8 & 0x1f),
            ];
            let len = value.data.len();
            if len < 0x80 {
                der.push(len as u8);
            } else {
                let bytes: Vec<u8> = len
                    .to_be_bytes()
                    .into_iter()
                    .skip_while(|&b| b == 0)
                    .collect();
                der.push(0x80 | bytes.len() as u8);
                der.extend(bytes);
            }
            der.extend_from_slice(value.data);
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}=#{hex}", keyword.map_or(oid.clone(), str::to_string))
        }
    }
}

fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The client-certificate check: WebPKI's against the trusted
/// certificates, and a version-1 certificate signed directly by one of them
/// (module doc).
#[derive(Debug)]
struct Verifier {
    webpki: Arc<dyn ClientCertVerifier>,
    trusted: Vec<Vec<u8>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl Verifier {
    fn new(
        trusted: Vec<Vec<u8>>,
        auth: ClientAuth,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Verifier, String> {
        let mut roots = rustls::RootCertStore::empty();
        for der in &trusted {
            // A certificate WebPKI cannot take as an anchor (a version-1
            // CA, say) is left to the version-1 rule.
            let _ = roots.add(CertificateDer::from(der.as_slice()));
        }
        let algorithms = provider.signature_verification_algorithms;
        let builder =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let builder = if auth == ClientAuth::Want {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        let webpki = builder
            .build()
            .map_err(|e| format!("ssl.trustStore: {e}"))?;
        Ok(Verifier {
            webpki,
            trusted,
            algorithms,
        })
    }

    /// A version-1 `leaf` signed by a trusted certificate, valid `now`.
    fn trusts_v1(&self, leaf: &[u8], now: UnixTime) -> bool {
        use x509_parser::prelude::FromDer;
        let Ok((_, leaf)) = x509_parser::certificate::X509Certificate::from_der(leaf) else {
            return false;
        };
        let Ok(at) = x509_parser::time::ASN1Time::from_timestamp(now.as_secs() as i64) else {
            return false;
        };
        if leaf.version() != x509_parser::x509::X509Version::V1 || !leaf.validity().is_valid_at(at)
        {
            return false;
        }
        self.trusted.iter().any(|der| {
            x509_parser::certificate::X509Certificate::from_der(der).is_ok_and(|(_, ca)| {
                ca.subject().as_raw() == leaf.issuer().as_raw()
                    && ca.validity().is_valid_at(at)
                    && leaf.verify_signature(Some(ca.public_key())).is_ok()
            })
        })
    }

    /// The handshake's signature by a version-1 certificate's key (WebPKI
    /// will not parse the certificate to check it), with the key from the
    /// certificate: TLS 1.3 checks the scheme as rustls does and tries its
    /// first algorithm (`verify_tls13_signature_with_raw_key`), TLS 1.2
    /// each algorithm the scheme maps to.
    fn v1_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Option<HandshakeSignatureValid> {
        use x509_parser::prelude::FromDer;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert).ok()?;
        if cert.version() != x509_parser::x509::X509Version::V1 {
            return None;
        }
        let spki = cert.public_key();
        if tls13 {
            let der = rustls::pki_types::SubjectPublicKeyInfoDer::from(spki.raw);
            return rustls::crypto::verify_tls13_signature_with_raw_key(
                message,
                &der,
                dss,
                &self.algorithms,
            )
            .ok();
        }
        let key = spki.subject_public_key.data.as_ref();
        let (_, algs) = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)?;
        algs.iter()
            .any(|alg| alg.verify_signature(key, message, dss.signature()).is_ok())
            .then(HandshakeSignatureValid::assertion)
    }
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        self.webpki.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.webpki.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.webpki
            .verify_client_cert(end_entity, intermediates, now)
            .or_else(|e| {
                (self.trusts_v1(end_entity, now))
                    .then(ClientCertVerified::assertion)
                    .ok_or(e)
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki
            .verify_tls12_signature(message, cert, dss)
            .or_else(|e| self.v1_signature(message, cert, dss, false).ok_or(e))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki
            .verify_tls13_signature(message, cert, dss)
            .or_else(|e| self.v1_signature(message, cert, dss, true).ok_or(e))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/tls")
            .join(name)
    }

    fn settings(auth: ClientAuth) -> TlsSettings {
        TlsSettings {
            key_store: StoreSettings {
                location: Some(data("server.jks")),
                password: "apassword".into(),
                kind: None,
            },
            trust_store: StoreSettings {
                location: Some(data("truststore.jks")),
                password: "apassword".into(),
                kind: None,
            },
            client_auth: auth,
            ..TlsSettings::default()
        }
    }

    #[test]
    fn subjects_print_as_javas_rfc2253_names() {
        let pem = std::fs::read(data("server-key.pem")).unwrap();
        let store =
            keystore::parse_jks(&std::fs::read(data("server.jks")).unwrap(), "apassword").unwrap();
        let (_, chain) = store.key.unwrap();
        assert_eq!(
            subject_dn(&chain[0]).as_deref(),
            Some("CN=localhost,OU=Servers,O=zk-rs")
        );
        assert_eq!(subject_dn(&chain[1]).as_deref(), Some("CN=Test CA,O=zk-rs"));
        assert!(!pem.is_empty());
        assert_eq!(escape_value(" a,b+c "), "\\ a\\,b\\+c\\ ");
        assert_eq!(escape_value("#x"), "\\#x");
        assert_eq!(subject_dn(b"not a certificate"), None);
    }

    #[test]
    fn acceptors_build_from_each_store_type() {
        for auth in [ClientAuth::None, ClientAuth::Want, ClientAuth::Need] {
            Acceptor::new(&settings(auth)).unwrap();
        }
        let mut s = settings(ClientAuth::Need);
        s.key_store.location = Some(data("server.p12"));
        Acceptor::new(&s).unwrap();
        s.key_store.location = Some(data("server-key.pem"));
        s.trust_store.location = Some(data("ca.pem"));
        Acceptor::new(&s).unwrap();
    }

    /// Regression: a version-1 server certificate (kazoo's test harness
    /// makes one) stopped the start (rustls's `with_single_cert` refuses
    /// it; Java serves it), so no server of kazoo's suite started.
    #[test]
    fn a_version_1_server_certificate_is_served() {
        let mut s = settings(ClientAuth::Need);
        s.key_store.location = Some(data("v1-server.pem"));
        Acceptor::new(&s).unwrap();
        // A key with another's certificate is refused.
        let key = keystore::load(&data("v1-server.pem"), Kind::Pem, "")
            .unwrap()
            .key
            .unwrap()
            .0;
        let client =
            keystore::parse_jks(&std::fs::read(data("client.jks")).unwrap(), "apassword").unwrap();
        let chain = client.key.unwrap().1.into_iter().map(Into::into).collect();
        let err = certified_key(chain, key, &provider()).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
    }

    /// A version-1 client certificate signed by a trusted one passes, as in
    /// Java (WebPKI alone refuses it); one nobody trusts does not.
    #[test]
    fn a_version_1_client_certificate_signed_by_a_trusted_one_passes() {
        let trusted = keystore::load(&data("ca.pem"), Kind::Pem, "")
            .unwrap()
            .trusted;
        let verifier = Verifier::new(trusted, ClientAuth::Need, Arc::new(provider())).unwrap();
        let now = UnixTime::now();
        let v1 = keystore::load(&data("v1-client.pem"), Kind::Pem, "")
            .unwrap()
            .trusted;
        let leaf = CertificateDer::from(v1[0].clone());
        assert!(verifier.webpki.verify_client_cert(&leaf, &[], now).is_err());
        verifier.verify_client_cert(&leaf, &[], now).unwrap();
        assert_eq!(subject_dn(&v1[0]).as_deref(), Some("CN=v1 client,O=zk-rs"));
        // A self-signed certificate nobody trusts fails.
        let rogue =
            keystore::parse_jks(&std::fs::read(data("rogue.jks")).unwrap(), "apassword").unwrap();
        let rogue = CertificateDer::from(rogue.key.unwrap().1[0].clone());
        assert!(verifier.verify_client_cert(&rogue, &[], now).is_err());
        // Outside its validity it fails.
        let later = UnixTime::since_unix_epoch(std::time::Duration::from_secs(200 * 365 * 86400));
        assert!(verifier.verify_client_cert(&leaf, &[], later).is_err());
    }

    /// Any server certificate: the tests check the server's side.
    #[derive(Debug)]
    struct AnyServer(Vec<SignatureScheme>);

    impl rustls::client::danger::ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.clone()
        }
    }

    /// The client's certificate, whatever the server asks.
    #[derive(Debug)]
    struct ClientCert(Arc<rustls::sign::CertifiedKey>);

    impl rustls::client::ResolvesClientCert for ClientCert {
        fn resolve(
            &self,
            _: &[&[u8]],
            _: &[SignatureScheme],
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
        fn has_certs(&self) -> bool {
            true
        }
    }

    /// An in-memory handshake of a rustls client presenting the PEM
    /// `client` (key and certificate) with `version`: the server side's
    /// auth ids, or the handshake's error.
    fn handshake(
        acceptor: &Acceptor,
        client: &str,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> Result<Vec<zk_jute::Id>, rustls::Error> {
        let provider = Arc::new(provider());
        let store = keystore::load(&data(client), Kind::Pem, "").unwrap();
        let (key, chain) = store.key.unwrap();
        let key = provider.key_provider.load_private_key(key).unwrap();
        let chain = chain.into_iter().map(Into::into).collect();
        let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, key));
        let schemes = provider
            .signature_verification_algorithms
            .supported_schemes();
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(schemes)))
            .with_client_cert_resolver(Arc::new(ClientCert(certified)));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut server = acceptor.accept().unwrap();
        for _ in 0..20 {
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).unwrap();
            server.read_tls(&mut bytes.as_slice()).unwrap();
            server.process_new_packets()?;
            let mut bytes = Vec::new();
            server.write_tls(&mut bytes).unwrap();
            client.read_tls(&mut bytes.as_slice()).unwrap();
            client.process_new_packets()?;
            if !server.is_handshaking() && !client.is_handshaking() {
                return Ok(acceptor.auth_ids(&server));
            }
        }
        panic!("the handshake did not finish");
    }

    /// Regression: kazoo's TestSSLClient never connected: a version-1
    /// client certificate passed the chain check and then failed the
    /// handshake's signature check (WebPKI parses the certificate again).
    #[test]
    fn a_version_1_client_completes_both_tls_versions() {
        let acceptor = Acceptor::new(&settings(ClientAuth::Need)).unwrap();
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let ids = handshake(&acceptor, "v1-client.pem", version).unwrap();
            assert_eq!(ids.len(), 1);
            assert_eq!(
                (ids[0].scheme.as_str(), ids[0].id.as_str()),
                ("x509", "CN=v1 client,O=zk-rs")
            );
            // A self-signed certificate nobody trusts fails the handshake.
            assert!(handshake(&acceptor, "rogue.pem", version).is_err());
        }
    }

    /// `ssl.enabledProtocols` and `ssl.ciphersuites` limit what is offered:
    /// a TLS 1.2 client is refused by a TLSv1.3-only server, a list with
    /// nothing offered is an error at start.
    #[test]
    fn protocols_and_cipher_suites_are_limited_as_configured() {
        let mut s = settings(ClientAuth::Need);
        s.protocols = Some("TLSv1.3, TLSv1.1".into());
        let only13 = Acceptor::new(&s).unwrap();
        handshake(&only13, "v1-client.pem", &rustls::version::TLS13).unwrap();
        assert!(handshake(&only13, "v1-client.pem", &rustls::version::TLS12).is_err());
        let mut s = settings(ClientAuth::Need);
        s.cipher_suites = Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_RC4".into());
        let one = Acceptor::new(&s).unwrap();
        handshake(&one, "v1-client.pem", &rustls::version::TLS12).unwrap();
        // That suite is TLS 1.2's: a TLS 1.3 client finds no suite in common.
        assert!(handshake(&one, "v1-client.pem", &rustls::version::TLS13).is_err());
        let mut s = settings(ClientAuth::Need);
        s.protocols = Some("TLSv1,SSLv3".into());
        assert!(
            Acceptor::new(&s)
                .unwrap_err()
                .contains("ssl.enabledProtocols")
        );
        let mut s = settings(ClientAuth::Need);
        s.cipher_suites = Some("TLS_RSA_WITH_RC4_128_MD5".into());
        assert!(Acceptor::new(&s).unwrap_err().contains("ssl.ciphersuites"));
    }

    #[test]
    fn bad_settings_name_the_store() {
        let mut s = settings(ClientAuth::Need);
        s.key_store.password = "wrong".into();
        let err = Acceptor::new(&s).unwrap_err();
        assert!(err.starts_with("ssl.keyStore:"), "{err}");
        let mut s = settings(ClientAuth::Need);
        s.key_store.location = Some(data("truststore.jks"));
        let err = Acceptor::new(&s).unwrap_err();
        assert!(err.contains("no private key"), "{err}");
        let mut s = settings(ClientAuth::Need);
        s.trust_store.location = Some(data("missing.jks"));
        let err = Acceptor::new(&s).unwrap_err();
        assert!(err.starts_with("ssl.trustStore:"), "{err}");
        let mut s = settings(ClientAuth::Need);
        s.key_store.location = None;
        assert!(
            Acceptor::new(&s)
                .unwrap_err()
                .contains("ssl.keyStore.location")
        );
        assert_eq!(ClientAuth::parse("WANT"), Some(ClientAuth::Want));
        assert_eq!(ClientAuth::parse("sometimes"), None);
    }
}
