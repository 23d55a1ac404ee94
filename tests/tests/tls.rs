//! TLS on the secure client port (`secureClientPort`, `ssl.*`), ours against
//! Apache ZooKeeper 3.8 with its `NettyServerCnxnFactory`, through the Java
//! client's `ClientCnxnSocketNetty` (`zookeeper.client.secure=true`) as
//! Kafka and the other Java users connect: the same answers, the same
//! `x509:<subject DN>` identity (whoami, ACLs), the same refusals (a client
//! certificate nobody trusts, plaintext on the TLS port, `ssl.clientAuth`).
//! The key and trust stores are the fixtures in `zk-server/tests/data/tls`
//! (`make.sh` there made them).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use zk_integration::server::{ServerOptions, free_port, netty_classpath};
use zk_integration::{ApacheZk, OurZk, ZkServer};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../zk-server/tests/data/tls")
        .join(name)
        .display()
        .to_string()
}

/// The zoo.cfg lines of the key and trust stores.
fn stores() -> String {
    format!(
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         ssl.keyStore.location={}\nssl.keyStore.password=apassword\n\
         ssl.trustStore.location={}\nssl.trustStore.password=apassword\n",
        fixture("server.jks"),
        fixture("truststore.jks")
    )
}

/// A server with a secure client port on `port` and `ssl.clientAuth` `auth`
/// (the default, need, when None).
fn secure(start: fn(ServerOptions) -> ZkServer, port: u16, auth: Option<&str>) -> ZkServer {
    let mut cfg = format!(
        "secureClientPort={port}\nsecureClientPortAddress=127.0.0.1\n{}",
        stores()
    );
    if let Some(a) = auth {
        cfg.push_str(&format!("ssl.clientAuth={a}\n"));
    }
    start(ServerOptions {
        netty: true,
        ..ServerOptions::cfg(&cfg)
    })
}

/// The Java CLI (ZooKeeperMain) over TLS to `127.0.0.1:port` with the client
/// key store `key_store` (none: no client certificate), `script` on stdin:
/// the lines the commands printed (the client's own banner and log left out).
fn java_tls_client(port: u16, key_store: Option<&str>, script: &str) -> Vec<String> {
    let mut cmd = Command::new("java");
    cmd.args([
        "-Xmx128m",
        "-XX:TieredStopAtLevel=1",
        "-Dzookeeper.client.secure=true",
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
        &format!(
            "-Dzookeeper.ssl.trustStore.location={}",
            fixture("truststore.jks")
        ),
        "-Dzookeeper.ssl.trustStore.password=apassword",
    ]);
    if let Some(ks) = key_store {
        cmd.arg(format!("-Dzookeeper.ssl.keyStore.location={}", fixture(ks)));
        cmd.arg("-Dzookeeper.ssl.keyStore.password=apassword");
    }
    cmd.args([
        "-cp",
        &format!("/usr/share/java/zookeeper.jar:{}", netty_classpath()),
        "org.apache.zookeeper.ZooKeeperMain",
        "-timeout",
        "5000",
        "-server",
        &format!("127.0.0.1:{port}"),
    ]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("java output");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("SLF4J")
                && !l.starts_with("at ")
                && !l.starts_with("Connecting to")
                && !l.starts_with("Welcome to ZooKeeper")
                && !l.starts_with("JLine support")
                && !l.starts_with("WATCHER::")
                && !l.starts_with("WatchedEvent")
        })
        .map(str::to_string)
        .collect()
}

const CLIENT_DN: &str = "CN=client,O=zk-rs";

/// Each of `wants` is one of `lines`.
fn assert_lines(lines: &[String], wants: &[&str]) {
    for want in wants {
        assert!(
            lines.iter().any(|l| l == want),
            "no line {want:?} in {lines:#?}"
        );
    }
}

fn session(start: fn(ServerOptions) -> ZkServer) -> Vec<String> {
    let port = free_port();
    let server = secure(start, port, None);
    // (zkCli's setAcl splits its ACL at commas, as in the DN: `auth::`
    // stands for the connection's x509 id.)
    let script = "create /t x\nget /t\nwhoami\ncreate /t/s z auth::cdrwa\ngetAcl /t/s\nget /t/s\n\
                  create /t/c y\nls /t\ndelete /t/c\nsetAcl /t/s x509:CN=other:r\nget /t/s\nls /\n";
    let mut lines = java_tls_client(port, Some("client.jks"), script);
    // The plaintext port sees the same tree; `conf` names the secure port.
    let conf = zk_integration::server::four_letter(server.addr(), "conf").expect("conf");
    lines.push(format!(
        "conf names the port: {}",
        conf.contains(&format!("secureClientPort={port}"))
    ));
    lines
}

/// Regression: `secureClientPort` and the `ssl.*` keys were ignored with a
/// warning, so Java clients with `zookeeper.client.secure=true` (and kazoo
/// with `use_ssl`) could not connect to ours.
#[test]
fn a_tls_session_matches_apache() {
    let ours = session(OurZk::start_with);
    let apache = session(ApacheZk::start_with);
    assert_eq!(ours, apache, "a session over TLS: ours vs Apache");
    assert_lines(
        &ours,
        &[
            "Created /t",
            &format!("x509: {CLIENT_DN}"),
            "'x509,'CN=client%2CO=zk-rs",
            "[c, s]",
            "z",
            "Insufficient permission : /t/s",
            "conf names the port: true",
        ],
    );
}

/// Whether a client with `key_store` (or none) can work over TLS with a
/// server whose `ssl.clientAuth` is `auth`: what `whoami` says, or that the
/// connection was lost.
fn client_admitted(
    start: fn(ServerOptions) -> ZkServer,
    auth: Option<&str>,
    key_store: Option<&str>,
) -> Vec<String> {
    let port = free_port();
    let _server = secure(start, port, auth);
    java_tls_client(port, key_store, "whoami\nls /\n")
        .into_iter()
        .filter(|l| l.contains(':') || l.starts_with('['))
        .filter(|l| !l.contains(" WARN ") && !l.contains(" INFO ") && !l.contains("Exception"))
        .map(|l| l.replace(&format!("127.0.0.1:{port}"), "127.0.0.1:PORT"))
        .collect()
}

#[test]
fn client_certificates_are_checked_as_apaches() {
    let cases: [(Option<&str>, Option<&str>); 4] = [
        (None, Some("rogue.jks")),          // need, a certificate nobody trusts
        (None, None),                       // need, no certificate
        (Some("want"), None),               // want, no certificate: admitted, no x509 id
        (Some("none"), Some("client.jks")), // none: not asked, no x509 id
    ];
    for (auth, ks) in cases {
        let ours = client_admitted(OurZk::start_with, auth, ks);
        let apache = client_admitted(ApacheZk::start_with, auth, ks);
        assert_eq!(
            ours, apache,
            "clientAuth {auth:?}, key store {ks:?}: ours vs Apache"
        );
        let admitted = ours.iter().any(|l| l.starts_with("[zookeeper"));
        assert_eq!(
            admitted,
            auth.is_some(),
            "clientAuth {auth:?}, key store {ks:?}: {ours:#?}"
        );
        assert!(!ours.iter().any(|l| l.starts_with("x509")), "{ours:#?}");
    }
}

/// Plaintext on the TLS port: the connection is closed without an answer,
/// counted in `zk_auth_failed_count` (ZooKeeper counts failed handshakes
/// there), and the server serves on.
fn plaintext_on_the_tls_port(start: fn(ServerOptions) -> ZkServer) -> Vec<String> {
    let port = free_port();
    let server = secure(start, port, None);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A plaintext client's first frame: a ConnectRequest's length and body
    // (Apache's Netty waits for a whole TLS record header before it judges).
    let mut connect = vec![0, 0, 0, 44];
    connect.extend([0u8; 44]);
    s.write_all(&connect).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let mut lines = vec![format!("answer: {:?}", String::from_utf8_lossy(&answer))];
    // Apache counts the failure after closing the socket.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let counted = loop {
        let mntr = zk_integration::server::four_letter(server.addr(), "mntr").expect("mntr");
        let line: Vec<String> = mntr
            .lines()
            .filter(|l| l.contains("auth_failed"))
            .map(str::to_string)
            .collect();
        if !line.iter().any(|l| l.ends_with("\t0")) || std::time::Instant::now() > deadline {
            break line;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    lines.extend(counted);
    lines.push(format!(
        "serves: {:?}",
        zk_integration::server::four_letter(server.addr(), "ruok")
    ));
    lines
}

#[test]
fn plaintext_on_the_tls_port_is_refused_as_apaches() {
    let ours = plaintext_on_the_tls_port(OurZk::start_with);
    let apache = plaintext_on_the_tls_port(ApacheZk::start_with);
    assert_eq!(ours, apache, "plaintext on the TLS port: ours vs Apache");
    assert_eq!(
        ours,
        [
            "answer: \"\"",
            "zk_auth_failed_count\t1",
            "serves: Some(\"imok\")"
        ]
    );
}

/// A store that cannot be read stops the start with an error naming it.
#[test]
fn a_bad_key_store_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={}\nsecureClientPort={}\nssl.keyStore.location={}\n\
             ssl.keyStore.password=wrong\n",
            dir.path().join("data").display(),
            free_port(),
            free_port(),
            fixture("server.jks")
        ),
    )
    .unwrap();
    let out = Command::new(zk_integration::server::our_binary())
        .arg(&cfg)
        .output()
        .expect("zk-server");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("ssl.keyStore:") && text.contains("password was incorrect"),
        "{text}"
    );
}

/// Sends 60 hostile byte strings to `port`, each on its own connection:
/// random bytes, TLS record headers with random bodies, a ClientHello cut
/// short.
fn send_hostile_bytes(port: u16) {
    let mut rng = zk_integration::rng::Rng::new(0x5eed_7150);
    for round in 0..60 {
        let len = rng.index(600) + 1;
        let mut bytes = rng.bytes(len);
        if round % 3 == 1 {
            // A handshake record header (type 22, TLS 1.0-1.2) and its length.
            let body = (len as u16).saturating_sub(5);
            bytes.splice(
                0..bytes.len().min(5),
                [22, 3, (round % 4) as u8, (body >> 8) as u8, body as u8],
            );
        } else if round % 3 == 2 {
            // A ClientHello's first bytes, then random ones.
            bytes.splice(0..bytes.len().min(9), [22, 3, 1, 2, 0, 1, 0, 1, 252]);
        }
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let _ = s.write_all(&bytes);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
}

/// Hostile bytes on the TLS port, and on a client port with
/// `client.portUnification` (where a first byte 22 means TLS): every
/// connection is closed (or left waiting for more) without harm, and the
/// server serves TLS and plaintext clients after them.
#[test]
fn hostile_bytes_on_the_tls_port_close_only_their_connection() {
    let port = free_port();
    let server = secure(OurZk::start_with, port, None);
    let unified = OurZk::start_with(ServerOptions::cfg(&format!(
        "client.portUnification=true\n{}",
        stores()
    )));
    for (server, port) in [(&server, port), (&unified, unified.addr().port())] {
        send_hostile_bytes(port);
        assert_eq!(
            zk_integration::server::four_letter(server.addr(), "ruok").as_deref(),
            Some("imok")
        );
        let lines = java_tls_client(port, Some("client.jks"), "create /after x\nget /after\n");
        assert!(lines.iter().any(|l| l == "Created /after"), "{lines:#?}");
    }
}

/// `client.portUnification=true`: the client port takes TLS clients (told
/// apart by their first byte) and plaintext ones, as Apache's Netty
/// `DualModeSslHandler`. (Apache 3.8.0 registers its x509 provider only
/// for a secure port: without the `authProvider.x509` line it closes every
/// TLS client of a unified port, "X509 Auth provider not found"; ours
/// needs no such line.)
fn unified(start: fn(ServerOptions) -> ZkServer) -> Vec<String> {
    let server = start(ServerOptions {
        netty: true,
        ..ServerOptions::cfg(&format!(
            "client.portUnification=true\n\
             authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n{}",
            stores()
        ))
    });
    let port = server.addr().port();
    let mut lines = java_tls_client(port, Some("client.jks"), "create /u x\nwhoami\n");
    let (ok, plain) = zk_integration::zkcli::run(&server.host_port(), "get /u\nwhoami\n", None);
    lines.push(format!("plaintext exit ok: {ok}"));
    lines.extend(
        plain
            .lines()
            .map(str::trim)
            .filter(|l| *l == "x" || l.starts_with("ip:") || l.starts_with("x509:"))
            .map(str::to_string),
    );
    lines
}

#[test]
fn port_unification_takes_tls_and_plaintext_as_apaches() {
    let ours = unified(OurZk::start_with);
    let apache = unified(ApacheZk::start_with);
    assert_eq!(ours, apache, "client.portUnification: ours vs Apache");
    assert_lines(
        &ours,
        &[
            "Created /u",
            &format!("x509: {CLIENT_DN}"),
            "plaintext exit ok: true",
            "x",
            "ip: 127.0.0.1",
        ],
    );
}

/// A process killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cmd` four-letter word over TLS, as `zkServer.sh status` sends it
/// when zoo.cfg has only a secureClientPort (FourLetterWordMain ... true,
/// with the client's TLS settings in CLIENT_JVMFLAGS).
fn tls_four_letter(port: u16, cmd: &str) -> String {
    let out = Command::new("java")
        .args([
            "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
            &format!(
                "-Dzookeeper.ssl.keyStore.location={}",
                fixture("client.jks")
            ),
            "-Dzookeeper.ssl.keyStore.password=apassword",
            &format!(
                "-Dzookeeper.ssl.trustStore.location={}",
                fixture("truststore.jks")
            ),
            "-Dzookeeper.ssl.trustStore.password=apassword",
            "-cp",
            &format!("/usr/share/java/zookeeper.jar:{}", netty_classpath()),
            "org.apache.zookeeper.client.FourLetterWordMain",
            "127.0.0.1",
            &port.to_string(),
            cmd,
            "true",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("java");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server whose zoo.cfg has a secureClientPort and no clientPort: what
/// `zkServer.sh status`'s query and `conf` say over TLS.
fn tls_only(apache: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nsecureClientPort={port}\nadmin.enableServer=false\n\
             4lw.commands.whitelist=*\n{}",
            dir.path().join("data").display(),
            stores()
        ),
    )
    .unwrap();
    let mut cmd = if apache {
        let cp = format!(
            "{}:{}",
            zk_integration::server::APACHE_CLASSPATH,
            netty_classpath()
        );
        zk_integration::server::apache_java_with(
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            &[],
            &cp,
        )
    } else {
        Command::new(zk_integration::server::our_binary())
    };
    let _server = Killed(
        cmd.arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let srvr = loop {
        let srvr = tls_four_letter(port, "srvr");
        if srvr.contains("Mode:") || std::time::Instant::now() > deadline {
            break srvr;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let conf = tls_four_letter(port, "conf");
    srvr.lines()
        .chain(conf.lines())
        .filter(|l| {
            l.starts_with("Mode:")
                || l.starts_with("clientPort=")
                || l.starts_with("secureClientPort=")
        })
        .map(|l| l.replace(&port.to_string(), "PORT"))
        .collect()
}

/// Regression: with a secureClientPort and no clientPort ours also served
/// plaintext on 2181 (the default it takes when clientPort is unset), where
/// ZooKeeper serves TLS only; a TLS-only deployment got a plaintext port.
#[test]
fn a_tls_only_server_answers_status_as_apaches() {
    let ours = tls_only(false);
    let apache = tls_only(true);
    assert_eq!(ours, apache, "TLS only: ours vs Apache");
    assert_eq!(
        ours,
        ["Mode: standalone", "clientPort=-1", "secureClientPort=PORT"]
    );
}
