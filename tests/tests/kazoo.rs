//! kazoo (Python) doing what a new user does first (sample-configs.md):
//! makepath create, get with its ZnodeStat, set with versions, children,
//! ephemeral and sequential nodes, data and child watches fired by another
//! session, transactions (committed and failed) and a recursive delete. The
//! asserts live in `tests/python/first_steps.py`; this checks its exit status.

use std::path::Path;
use std::process::Command;

use zk_integration::{ApacheZk, OurZk, ZkServer};

fn run_kazoo(server: &ZkServer) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/first_steps.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(server.host_port())
        .output()
        .expect("python3 is not installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'kazoo'"),
        "kazoo is missing: python3 -m pip install kazoo (scripts/test does this)"
    );
    assert!(
        out.status.success(),
        "kazoo script failed against {} ({}):\nstdout:\n{}\nstderr:\n{stderr}",
        server.flavor(),
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn kazoo_first_steps_apache() {
    run_kazoo(&ApacheZk::start());
}

#[test]
fn kazoo_first_steps_ours() {
    run_kazoo(&OurZk::start(""));
}
