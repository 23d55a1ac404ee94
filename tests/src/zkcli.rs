//! zkCli.sh (the Java CLI of the Debian package), scripted: commands on
//! stdin, one JVM per call (~0.5-1.5 s to start).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The Debian package's zkCli.sh.
pub const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// Runs zkCli.sh against `host_port` with `script` on stdin (it reads
/// commands line by line when stdin is not a tty, queues them until the
/// session is connected, and exits at the end of input), with
/// `CLIENT_JVMFLAGS` if given. Returns whether it exited 0, and its stdout
/// then stderr (some results, `Created ...` and errors, go to stderr).
pub fn run(host_port: &str, script: &str, client_jvmflags: Option<&str>) -> (bool, String) {
    assert!(
        Path::new(ZKCLI).exists(),
        "{ZKCLI} is missing; {}",
        crate::server::INSTALL_HINT
    );
    let mut cmd = Command::new(ZKCLI);
    cmd.args(["-server", host_port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(flags) = client_jvmflags {
        cmd.env("CLIENT_JVMFLAGS", flags);
    }
    let mut child = cmd.spawn().expect("start zkCli.sh");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write commands");
    let out = child.wait_with_output().expect("zkCli.sh output");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
