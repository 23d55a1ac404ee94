//! The `zk-bench` binary: see the library docs and `zk-bench --help`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(zk_bench::main_with_args(&args));
}
