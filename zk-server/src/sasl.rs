//! SASL client authentication (opcode 102), the DIGEST-MD5 mechanism as
//! Apache ZooKeeper 3.8 runs it (`ZooKeeperSaslServer`, Java's
//! `DigestMD5Server` created for protocol `zookeeper`, server name
//! `zk-sasl-md5`), with the users of the JAAS file's `Server` section
//! (`org.apache.zookeeper.server.auth.DigestLoginModule required
//! user_<name>="<password>" ...;`).
//!
//! The exchange (RFC 2831, qop `auth`, `md5-sess`): the client's first
//! token is empty; the server answers a challenge (realm `zk-sasl-md5`, a
//! fresh nonce); the client answers its digest-response; the server checks
//! it against the user's password and answers `rspauth=...`, and the
//! connection gains the id `sasl:<username>` (and `super:` when the name is
//! `superUser`'s). Anything else fails the exchange: the server answers
//! AUTHFAILED and closes the connection, as Apache. Kerberos (GSSAPI) is not
//! offered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use tracing::info;

use crate::config::Config;
use crate::error::StartError;

/// Java's `Sasl.createSaslServer` arguments ZooKeeper uses for DIGEST-MD5.
const PROTOCOL: &str = "zookeeper";
const SERVER_NAME: &str = "zk-sasl-md5";

/// The JAAS login module whose `user_*` options are the SASL users.
const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// The SASL users of this configuration's JAAS file (see
/// [`Config::jaas_config`]), if it names one and the file has the section;
/// a file that cannot be read or parsed stops the start. A file without the
/// section is no error, as in ZooKeeper (`configureSaslLogin`: JAAS finds no
/// entries, the server starts without SASL): kazoo's test harness, for one,
/// passes an empty JAAS file to every server it starts.
pub(crate) fn load_users(config: &Config) -> Result<Option<SaslUsers>, StartError> {
    let from_env =
        || crate::config::jvm_system_property("java.security.auth.login.config").map(PathBuf::from);
    let Some(path) = config.jaas_config.clone().or_else(from_env) else {
        return Ok(None);
    };
    let Some(users) = SaslUsers::load(&path, &config.sasl_section).map_err(StartError::Jaas)?
    else {
        info!(
            "SASL not offered: the JAAS configuration {} has no section {}",
            path.display(),
            config.sasl_section
        );
        return Ok(None);
    };
    info!(
        "SASL (DIGEST-MD5): {} users in section {} of {}",
        users.users.len(),
        config.sasl_section,
        path.display()
    );
    Ok(Some(users))
}

/// The SASL users: name → password (never printed).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SaslUsers {
    users: HashMap<String, String>,
}

impl std::fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SaslUsers({} users)", self.users.len())
    }
}

impl SaslUsers {
    /// The users of section `section` of the JAAS file `path`; `None` if the
    /// file has no such section.
    pub fn load(path: &Path, section: &str) -> Result<Option<SaslUsers>, String> {
        let text = crate::config::read_config_file(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        parse_jaas(&text, section).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn password(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }
}

/// Section `section` of a JAAS configuration: its `DigestLoginModule`'s
/// `user_<name>="<password>"` options; `None` if there is no such section
/// (every section is still parsed: a malformed file is an error).
fn parse_jaas(text: &str, section: &str) -> Result<Option<SaslUsers>, String> {
    let toks = jaas_tokens(text)?;
    let mut i = 0;
    let mut found = None;
    while i < toks.len() {
        // name { module flag opt=value ... ; ... } ;
        let name = &toks[i];
        if toks.get(i + 1).map(String::as_str) != Some("{") {
            return Err(format!("expected '{{' after {name:?}"));
        }
        i += 2;
        let mut users = HashMap::new();
        while toks.get(i).map(String::as_str) != Some("}") {
            let module = toks.get(i).ok_or("a section is not closed")?.clone();
            i += 2; // the module and its flag (required, optional, ...)
            while toks.get(i).map(String::as_str) != Some(";") {
                let key = toks.get(i).ok_or("a login module entry does not end")?;
                if toks.get(i + 1).map(String::as_str) != Some("=") {
                    return Err(format!("expected '=' after option {key:?}"));
                }
                let value = toks.get(i + 2).ok_or("an option has no value")?;
                if module == DIGEST_LOGIN_MODULE
                    && let Some(user) = key.strip_prefix("user_")
                {
                    users.insert(user.to_string(), value.clone());
                }
                i += 3;
            }
            i += 1;
        }
        i += 1;
        if toks.get(i).map(String::as_str) == Some(";") {
            i += 1;
        }
        if name == section {
            found = Some(users);
        }
    }
    Ok(found.map(|users| SaslUsers { users }))
}

/// JAAS tokens: words, quoted strings (unquoted), and `{ } ; =`; `//` and
/// `/* */` comments skipped.
fn jaas_tokens(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                loop {
                    let c = chars.next().ok_or("a comment is not closed")?;
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '{' | '}' | ';' | '=' => out.push(c.to_string()),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next().ok_or("a quoted string is not closed")? {
                        '"' => break,
                        '\\' => s.push(chars.next().ok_or("a quoted string is not closed")?),
                        c => s.push(c),
                    }
                }
                out.push(s);
            }
            c => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "{};=\"".contains(n) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// One connection's DIGEST-MD5 exchange.
#[derive(Debug, Default)]
pub struct DigestMd5 {
    /// The nonce of the challenge sent, once sent.
    nonce: Option<String>,
    done: bool,
}

/// What a step of the exchange gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token; more is to come.
    Continue(Vec<u8>),
    /// Send this token; the client is `user`.
    Done { token: Vec<u8>, user: String },
}

impl DigestMd5 {
    /// The server's answer to the client's `token`, or why it fails.
    pub fn step(&mut self, users: &SaslUsers, token: &[u8]) -> Result<Step, String> {
        if self.done {
            return Err("the exchange is already complete".into());
        }
        let Some(nonce) = self.nonce.clone() else {
            if !token.is_empty() {
                return Err("DIGEST-MD5 must not have an initial response".into());
            }
            let nonce = new_nonce();
            let challenge = format!(
                "realm=\"{SERVER_NAME}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess"
            );
            self.nonce = Some(nonce);
            return Ok(Step::Continue(challenge.into_bytes()));
        };
        let resp = parse_directives(token)?;
        let get = |k: &str| resp.get(k).map(String::as_str);
        let user = get("username").ok_or("no username")?;
        let realm = get("realm").unwrap_or("");
        if get("nonce") != Some(nonce.as_str()) {
            return Err("the nonce is not ours".into());
        }
        let cnonce = get("cnonce").ok_or("no cnonce")?;
        let nc = get("nc").ok_or("no nc")?;
        if nc != "00000001" {
            return Err(format!("nonce count {nc}"));
        }
        let qop = get("qop").unwrap_or("auth");
        if qop != "auth" {
            return Err(format!("qop {qop} is not offered"));
        }
        let uri = get("digest-uri").ok_or("no digest-uri")?;
        // Java's DigestMD5Server: the URI must be protocol/serverName.
        if !uri.eq_ignore_ascii_case(&format!("{PROTOCOL}/{SERVER_NAME}")) {
            return Err(format!(
                "mismatched digest-uri {uri}; expecting {PROTOCOL}/{SERVER_NAME}"
            ));
        }
        let password = users
            .password(user)
            .ok_or_else(|| format!("no user {user:?}"))?;
        let utf8 = get("charset") == Some("utf-8");
        let ha1 = hex(&session_key(
            user,
            realm,
            password,
            &nonce,
            cnonce,
            get("authzid"),
            utf8,
        ));
        let kd = |a2: &str| {
            let ha2 = hex(&Md5::digest(a2.as_bytes()));
            hex(&Md5::digest(
                format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes(),
            ))
        };
        let want = kd(&format!("AUTHENTICATE:{uri}"));
        if !get("response").is_some_and(|r| r.eq_ignore_ascii_case(&want)) {
            return Err(format!("wrong password for {user:?}"));
        }
        self.done = true;
        Ok(Step::Done {
            token: format!("rspauth={}", kd(&format!(":{uri}"))).into_bytes(),
            user: user.to_string(),
        })
    }
}

/// `H(A1)` of md5-sess: `H({ H(user:realm:password), :nonce:cnonce[:authzid] })`.
fn session_key(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    authzid: Option<&str>,
    utf8: bool,
) -> [u8; 16] {
    let mut inner = Md5::new();
    for (i, part) in [user, realm, password].into_iter().enumerate() {
        if i > 0 {
            inner.update(b":");
        }
        inner.update(credential_bytes(part, utf8));
    }
    let mut a1 = Md5::new();
    a1.update(inner.finalize());
    a1.update(format!(":{nonce}:{cnonce}").as_bytes());
    if let Some(z) = authzid {
        a1.update(b":");
        a1.update(z.as_bytes());
    }
    a1.finalize().into()
}

/// A credential as RFC 2831 hashes it: UTF-8 with `charset=utf-8`, else
/// ISO 8859-1 (where every char fits).
fn credential_bytes(s: &str, utf8: bool) -> Vec<u8> {
    if !utf8 && s.chars().all(|c| (c as u32) < 256) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// 16 random bytes, hex.
fn new_nonce() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if filled.is_err() {
        // No /dev/urandom: the clock and the process id.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = t ^ u128::from(std::process::id());
        b = Md5::digest(seed.to_le_bytes()).into();
    }
    hex(&b)
}

/// RFC 2831 directives: `key=value` or `key="quoted"`, comma separated.
fn parse_directives(token: &[u8]) -> Result<HashMap<String, String>, String> {
    let text = std::str::from_utf8(token).map_err(|_| "the response is not UTF-8")?;
    let mut out = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("directive {key:?} has no value"));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next().ok_or("a quoted value is not closed")? {
                    '"' => break,
                    '\\' => value.push(chars.next().ok_or("a quoted value is not closed")?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        let key = key.trim().to_ascii_lowercase();
        if out.insert(key.clone(), value.trim().to_string()).is_some() {
            return Err(format!("directive {key} twice"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> SaslUsers {
        parse_jaas(
            "/* the server's users */\nServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             user_super=\"adminsecret\"\n  user_bob=\"bob\\\"secret\";\n};\n\
             Client { org.apache.zookeeper.server.auth.DigestLoginModule required username=\"bob\" password=\"x\"; };\n",
            "Server",
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn jaas_server_section_gives_the_users() {
        let u = users();
        assert_eq!(u.password("bob"), Some("bob\"secret"));
        assert_eq!(u.password("super"), Some("adminsecret"));
        assert_eq!(u.password("username"), None);
        assert!(parse_jaas("Server { m required a \"b\"; };", "Server").is_err());
        assert!(parse_jaas("Server { m required a=\"b", "Server").is_err());
        // A section the file does not have is not an error (ZooKeeper starts
        // without SASL), but a malformed section that is not the one asked
        // for still is.
        assert_eq!(
            parse_jaas("Server { m required a=\"b\"; };", "Other"),
            Ok(None)
        );
        assert_eq!(parse_jaas("", "Server"), Ok(None));
        assert!(parse_jaas("Other { m required a \"b\"; };", "Server").is_err());
    }

    #[test]
    fn rfc_2831_example_response_and_rspauth() {
        // RFC 2831 §4's worked example (an IMAP server), through the same
        // arithmetic.
        let ha1 = hex(&session_key(
            "chris",
            "elwood.innosoft.com",
            "secret",
            "OA6MG9tEQGm2hh",
            "OA6MHXh6VqTrRk",
            None,
            false,
        ));
        let kd = |a2: &str| {
            let ha2 = hex(&Md5::digest(a2.as_bytes()));
            hex(&Md5::digest(
                format!("{ha1}:OA6MG9tEQGm2hh:00000001:OA6MHXh6VqTrRk:auth:{ha2}").as_bytes(),
            ))
        };
        assert_eq!(
            kd("AUTHENTICATE:imap/elwood.innosoft.com"),
            "d388dad90d4bbd760a152321f2143af7"
        );
        assert_eq!(
            kd(":imap/elwood.innosoft.com"),
            "ea40f60335c427b5527b84dbabcdfffd"
        );
    }

    /// A client's side of the exchange, as Java's DigestMD5Client answers.
    fn client_response(challenge: &[u8], user: &str, password: &str) -> Vec<u8> {
        let c = parse_directives(challenge).unwrap();
        let (nonce, realm) = (&c["nonce"], &c["realm"]);
        let cnonce = "c0ffee";
        let uri = "zookeeper/zk-sasl-md5";
        let ha1 = hex(&session_key(
            user,
            realm,
            password,
            nonce,
            cnonce,
            Some(user),
            true,
        ));
        let ha2 = hex(&Md5::digest(format!("AUTHENTICATE:{uri}").as_bytes()));
        let resp = hex(&Md5::digest(
            format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes(),
        ));
        format!(
            "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={resp},qop=auth,\
             authzid=\"{user}\""
        )
        .into_bytes()
    }

    #[test]
    fn an_exchange_succeeds_with_the_password_and_fails_without() {
        let u = users();
        let mut s = DigestMd5::default();
        let Step::Continue(ch) = s.step(&u, b"").unwrap() else {
            panic!("a challenge first")
        };
        let text = String::from_utf8(ch.clone()).unwrap();
        assert!(text.contains("realm=\"zk-sasl-md5\"") && text.contains("algorithm=md5-sess"));
        let resp = client_response(&ch, "bob", "bob\"secret");
        match s.step(&u, &resp).unwrap() {
            Step::Done { token, user } => {
                assert_eq!(user, "bob");
                assert!(token.starts_with(b"rspauth="));
            }
            other => panic!("{other:?}"),
        }
        assert!(s.step(&u, b"").is_err(), "nothing after completion");

        let mut s = DigestMd5::default();
        let Step::Continue(ch) = s.step(&u, b"").unwrap() else {
            panic!()
        };
        let err = s
            .step(&u, &client_response(&ch, "bob", "wrong"))
            .unwrap_err();
        assert!(err.contains("wrong password"), "{err}");
        let mut s = DigestMd5::default();
        let Step::Continue(ch) = s.step(&u, b"").unwrap() else {
            panic!()
        };
        assert!(s.step(&u, &client_response(&ch, "eve", "x")).is_err());
        assert!(
            DigestMd5::default().step(&u, b"x").is_err(),
            "no initial response"
        );
        for bad in [&b"username"[..], b"a=\"unclosed", b"a=1,a=2", &[0xff, 0xfe]] {
            let mut s = DigestMd5::default();
            s.step(&u, b"").unwrap();
            assert!(s.step(&u, bad).is_err());
        }
    }

    /// Regression guard for untrusted input: any bytes as a client's
    /// response fail cleanly (no panic), whatever their shape.
    #[test]
    fn arbitrary_responses_never_panic() {
        let u = users();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let pieces: [&[u8]; 8] = [
            b"username=\"bob\"",
            b",",
            b"nonce=",
            b"\"",
            b"\\",
            b"qop=auth",
            b"=",
            &[0xc3, 0x28],
        ];
        for _ in 0..5000 {
            let mut s = DigestMd5::default();
            s.step(&u, b"").unwrap();
            let mut token = Vec::new();
            for _ in 0..(x % 12) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                token.extend_from_slice(pieces[(x % 8) as usize]);
            }
            x = x.wrapping_add(1);
            let _ = s.step(&u, &token);
        }
    }
}
