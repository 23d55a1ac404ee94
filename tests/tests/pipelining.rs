//! A client that pipelines more than jute.maxbuffer of requests: twenty
//! setData of 2000 bytes (jute.maxbuffer=8192) sent while the server is
//! stopped (SIGSTOP), so that all of them wait in the server's socket buffer
//! when it resumes, are all answered. Regression: our server read at most
//! about jute.maxbuffer at a time from a socket and, the readiness being
//! edge-triggered, never came back for the bytes already in the kernel: the
//! connection stalled until the session expired (seen with 20 × 300 KB in
//! tests/ensemble_sync.rs under load).

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_integration::{Client, ConnectOptions, Flavor, ServerOptions, ZkServer, start_server};
use zk_jute::{Request, SetDataRequest};

fn signal(server: &ZkServer, sig: &str) {
    let pid = server.pid().expect("running").to_string();
    // The shell's kill builtin: /bin/kill (procps) may be missing.
    let st = std::process::Command::new("sh")
        .args(["-c", &format!("kill {sig} {pid}")])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill {sig} {pid}");
}

/// Sends 20 setData of `data` on `c` (blocking as the socket fills) and
/// waits for their replies.
fn pipeline(c: &mut Client, data: &Bytes) -> Result<(), String> {
    let req = Request::SetData(SetDataRequest {
        path: "/n".into(),
        data: Some(data.clone()),
        version: -1,
    });
    let xids: Vec<i32> = (0..20)
        .map(|_| c.send(&req).map_err(|e| format!("send: {e}")))
        .collect::<Result<_, _>>()?;
    for (i, x) in xids.into_iter().enumerate() {
        let r = c.wait(x).map_err(|e| format!("reply {i} of 20: {e}"))?;
        if r.err != 0 {
            return Err(format!("reply {i}: {:?}", r.code()));
        }
    }
    Ok(())
}

fn pipelined_while_stopped(flavor: Flavor) {
    // Apache takes jute.maxbuffer as a system property, not from zoo.cfg:
    // there the line changes nothing, and 2000-byte requests are far below
    // its limit either way.
    let server = start_server(flavor, ServerOptions::cfg("jute.maxbuffer=8192\n"));
    let opts = ConnectOptions {
        io_timeout: Duration::from_secs(10),
        ..ConnectOptions::default()
    };
    let mut c = Client::connect_with(server.addr(), &opts).expect("connect");
    c.create("/n", b"", 0).unwrap().expect("create /n");
    let data = Bytes::from(vec![1u8; 2000]);
    for round in 0..5 {
        // A round at full speed first.
        pipeline(&mut c, &data).unwrap_or_else(|e| panic!("round {round}: {e}"));
        signal(&server, "-STOP");
        let sender = std::thread::spawn({
            let data = data.clone();
            move || {
                let t = Instant::now();
                let r = pipeline(&mut c, &data);
                (c, r, t.elapsed())
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        signal(&server, "-CONT");
        let (back, r, took) = sender.join().expect("sender thread");
        if let Err(e) = r {
            panic!(
                "round {round}: pipelined requests stalled after {took:?}: {e}\n{}",
                server.output_tail(20)
            );
        }
        c = back;
    }
}

#[test]
fn pipelined_while_stopped_apache() {
    pipelined_while_stopped(Flavor::Apache);
}

#[test]
fn pipelined_while_stopped_ours() {
    pipelined_while_stopped(Flavor::Ours);
}
