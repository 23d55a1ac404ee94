//! The C client's CLI `cli_mt` (Debian zookeeper-bin,
//! `/usr/lib/zookeeper/bin/cli_mt -h host:port`) fed commands on stdin.
//!
//! cli_mt is asynchronous: a command typed before the session is connected
//! fails with -116, and results are printed by completion callbacks. So each
//! command is sent only after the previous one's result line appeared
//! (waiting on output with a deadline, no fixed sleeps). `stdbuf -oL`
//! (coreutils) line-buffers its stdout, else nothing shows until it exits.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_integration::{ApacheZk, OurZk, ZkServer};

const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";

struct CliMt {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    mark: usize,
}

impl CliMt {
    fn start(server: &ZkServer) -> CliMt {
        assert!(
            Path::new(CLI_MT).exists(),
            "{CLI_MT} is missing (Debian package zookeeper-bin); {}",
            zk_integration::server::INSTALL_HINT
        );
        // stdout is a pipe, so the C stdio would buffer it until exit:
        // stdbuf makes it line-buffered
        let mut child = Command::new("stdbuf")
            .args(["-oL", "-eL", CLI_MT, "-h", &server.host_port()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cli_mt");
        let stdin = child.stdin.take();
        let out = Arc::new(Mutex::new(Vec::new()));
        // results go to stdout, session and watch events to stderr: both
        // land in one buffer
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for mut src in [stdout, stderr] {
            let sink = Arc::clone(&out);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = src.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().expect("lock").extend_from_slice(&buf[..n]);
                }
            });
        }
        CliMt {
            child,
            stdin,
            out,
            mark: 0,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().expect("lock")).into_owned()
    }

    /// Waits until `needle` appears in the output printed since the last
    /// command was sent.
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text();
            if text.get(self.mark..).is_some_and(|t| t.contains(needle)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cli_mt: `{needle}` did not appear; output so far:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends one command and waits for each of `results` in its output.
    fn cmd(&mut self, line: &str, results: &[&str]) {
        self.mark = self.out.lock().expect("lock").len();
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to cli_mt");
        stdin.flush().expect("flush");
        for r in results {
            self.expect(r);
        }
    }
}

impl Drop for CliMt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli_mt_session(server: &ZkServer) {
    let mut c = CliMt::start(server);
    c.expect("state = CONNECTED_STATE");
    c.cmd("create /cmt", &["[/cmt]: rc = 0", "name = /cmt"]);
    c.cmd("set /cmt hello", &["/cmt: rc = 0 Stat:", "version=1"]);
    c.cmd("get /cmt", &["/cmt: rc = 0", "value_len = 5", "hello"]);
    c.cmd("create +e /cmt/eph", &["[/cmt/eph]: rc = 0"]);
    c.cmd("create +s /cmt/s", &["name = /cmt/s0000000001"]);
    c.cmd(
        "ls /cmt",
        &["/cmt: rc = 0", "s0000000001", "eph", "time = "],
    );
    c.cmd("wexists /cmt/none", &["Error -101 for /cmt/none"]);
    c.cmd(
        "create /cmt/none",
        &[
            "Watcher CREATED_EVENT state = CONNECTED_STATE for path /cmt/none",
            "[/cmt/none]: rc = 0",
        ],
    );
    c.cmd("delete /cmt", &["/cmt: rc = -111"]);
    c.cmd("get /nope", &["/nope: rc = -101"]);
    c.cmd("delete /cmt/none", &["/cmt/none: rc = 0"]);
    c.cmd("quit", &["Quitting..."]);
    c.stdin = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "cli_mt did not exit after quit:\n{}",
            c.text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn cli_mt_apache() {
    cli_mt_session(&ApacheZk::start());
}

#[test]
fn cli_mt_ours() {
    cli_mt_session(&OurZk::start(""));
}
