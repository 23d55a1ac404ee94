//! Four-letter words, shape for shape against Apache ZooKeeper 3.8: the same
//! small workload (two sessions, a few znodes, an ephemeral, data and child
//! watches) on both servers, then every command's output normalised (numbers,
//! hex, addresses, dates, the version string become placeholders) and
//! compared line by line. Plus the parsers clients use on ours: go-zookeeper's
//! `srvr` and `cons` regexes, kazoo's `zookeeper.version=` from `envi`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use zk_integration::{Client, Flavor, ServerOptions, ZkServer, four_letter, start_server};

/// The workload: two sessions, /a (data), /a/b, an ephemeral /e, data
/// watches on /a (both sessions) and /nope (exists), a child watch on /.
fn workload(server: &ZkServer) -> (Client, Client) {
    let mut s1 = Client::connect(server.addr()).expect("session 1");
    let mut s2 = Client::connect(server.addr()).expect("session 2");
    s1.create("/a", b"hello", 0).unwrap().unwrap();
    s1.create("/a/b", b"x", 0).unwrap().unwrap();
    s2.create("/e", b"", 1).unwrap().unwrap();
    s1.get_data("/a", true).unwrap().unwrap();
    s2.get_data("/a", true).unwrap().unwrap();
    assert!(s2.exists("/nope", true).unwrap().is_none());
    s1.children("/", true).unwrap().unwrap();
    (s1, s2)
}

fn cmd(addr: SocketAddr, c: &str) -> String {
    four_letter(addr, c).unwrap_or_else(|| panic!("{c}: no answer"))
}

/// Sends `stmk` with its 8-byte mask.
fn stmk(addr: SocketAddr, mask: i64) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut msg = b"stmk".to_vec();
    msg.extend_from_slice(&mask.to_be_bytes());
    s.write_all(&msg).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Replaces what differs between two servers by nature with placeholders.
fn normalise(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let line = if let Some(rest) = line.strip_prefix("Zookeeper version: ") {
            let nl = if rest.ends_with('\n') { "\n" } else { "" };
            format!("Zookeeper version: VERSION{nl}")
        } else if line.starts_with("zk_version\t") {
            "zk_version\tVERSION\n".to_owned()
        } else {
            line.to_owned()
        };
        out.push_str(&placeholders(&line));
    }
    out
}

/// Java dates → DATE, 0x… → 0xH, numbers → N (decimals → N.N).
fn placeholders(line: &str) -> String {
    let mut s = line.to_owned();
    // Java Date.toString(): `Sun Nov 22 03:41:25 UTC 2026`
    while let Some(i) = find_java_date(&s) {
        s.replace_range(i..i + 28, "DATE");
    }
    let b: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '0' && b.get(i + 1) == Some(&'x') {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            out.push_str("0xH");
            i = j;
        } else if b[i].is_ascii_digit() {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == '.') {
                j += 1;
            }
            let word: String = b[i..j].iter().collect();
            out.push_str(match word.matches('.').count() {
                0 => "N",
                1 => "N.N",
                _ => "N.N.N.N", // an IP address
            });
            i = j;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn find_java_date(s: &str) -> Option<usize> {
    const DAYS: [&str; 7] = ["Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun "];
    (0..s.len()).find(|&i| {
        let Some(d) = s.get(i..i + 28) else {
            return false;
        };
        let b = d.as_bytes();
        DAYS.iter().any(|day| d.starts_with(day))
            && b[10] == b' '
            && b[13] == b':'
            && b[16] == b':'
            && d[20..24]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == ' ')
            && d[24..28].chars().all(|c| c.is_ascii_digit())
    })
}

/// Lines of a normalised block, sorted: connections print in a hash order.
fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// Blocks (a line and the tab-indented lines under it), sorted.
fn sorted_blocks(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        match blocks.last_mut() {
            Some(b) if line.starts_with('\t') => {
                b.push('\n');
                b.push_str(line);
            }
            _ => blocks.push(line.to_owned()),
        }
    }
    blocks.sort();
    blocks
}

/// The keys of `key=value` or `key\tvalue` lines.
fn keys(text: &str, sep: char) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once(sep).map(|(k, _)| k.to_owned()))
        .collect()
}

/// go-zookeeper's FLWSrvr:
/// `^Zookeeper version: ([^,]+), built on (\d\d/\d\d/\d\d\d\d \d\d:\d\d [A-Za-z0-9:\+\-]+)`
fn go_zookeeper_srvr_version(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("Zookeeper version: ") else {
        return false;
    };
    let Some(comma) = rest.find(',') else {
        return false;
    };
    if comma == 0 {
        return false;
    }
    let Some(date) = rest[comma..].strip_prefix(", built on ") else {
        return false;
    };
    let shape = "dd/dd/dddd dd:dd ";
    if date.len() <= shape.len() {
        return false;
    }
    let ok_shape = date.bytes().zip(shape.bytes()).all(|(c, p)| match p {
        b'd' => c.is_ascii_digit(),
        _ => c == p,
    });
    let tz = &date[shape.len()..];
    let tz_len = tz
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || b":+-".contains(c))
        .count();
    ok_shape && tz_len > 0
}

/// go-zookeeper's FLWCons regex:
/// `^\s+\/((?:\d+\.){3}\d+):(\d+)\[(\d+)\]\(queued=(\d+),recved=(\d+),sent=(\d+),
/// sid=(0x[A-Za-z0-9]+),lop=(\w+),est=(\d+),to=(\d+),lcxid=(0x[A-Za-z0-9]+),
/// lzxid=(0x[A-Za-z0-9]+),lresp=(\d+),llat=(\d+),minlat=(\d+),avglat=(\d+),maxlat=(\d+)\)`
fn go_zookeeper_cons(line: &str) -> bool {
    let t = line.trim_start();
    if t.len() == line.len() {
        return false;
    }
    let Some(t) = t.strip_prefix('/') else {
        return false;
    };
    let Some((ip, t)) = t.split_once(':') else {
        return false;
    };
    let octets: Vec<&str> = ip.split('.').collect();
    if octets.len() != 4 || !octets.iter().all(|o| digits(o)) {
        return false;
    }
    let Some((port, t)) = t.split_once('[') else {
        return false;
    };
    let Some((ops, t)) = t.split_once("](") else {
        return false;
    };
    let Some(fields) = t.strip_suffix(')') else {
        return false;
    };
    let want = [
        ("queued", 'd'),
        ("recved", 'd'),
        ("sent", 'd'),
        ("sid", 'x'),
        ("lop", 'w'),
        ("est", 'd'),
        ("to", 'd'),
        ("lcxid", 'x'),
        ("lzxid", 'x'),
        ("lresp", 'd'),
        ("llat", 'd'),
        ("minlat", 'd'),
        ("avglat", 'd'),
        ("maxlat", 'd'),
    ];
    let got: Vec<&str> = fields.split(',').collect();
    digits(port)
        && digits(ops)
        && got.len() == want.len()
        && got.iter().zip(want).all(|(f, (k, kind))| {
            let Some(v) = f.strip_prefix(k).and_then(|v| v.strip_prefix('=')) else {
                return false;
            };
            match kind {
                'd' => digits(v),
                'x' => v
                    .strip_prefix("0x")
                    .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric())),
                _ => !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            }
        })
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

struct Pair {
    apache: ZkServer,
    ours: ZkServer,
}

impl Pair {
    fn start(opts: ServerOptions) -> Pair {
        Pair {
            apache: start_server(Flavor::Apache, opts.clone()),
            ours: start_server(Flavor::Ours, opts),
        }
    }

    fn both(&self, c: &str) -> (String, String) {
        (cmd(self.apache.addr(), c), cmd(self.ours.addr(), c))
    }
}

#[test]
fn four_letter_words_have_apaches_shapes() {
    let pair = Pair::start(ServerOptions::default());
    let _a = workload(&pair.apache);
    let _o = workload(&pair.ours);
    let mut diffs = Vec::new();
    // Line-for-line after normalisation.
    for c in [
        "ruok", "srvr", "isro", "wchs", "dirs", "crst", "srst", "gtmk", "hash",
    ] {
        let (a, o) = pair.both(c);
        if normalise(&a) != normalise(&o) {
            diffs.push(format!(
                "{c}:\n--- apache\n{a}\n--- ours\n{o}\n--- normalised apache\n{}\n--- normalised ours\n{}",
                normalise(&a),
                normalise(&o)
            ));
        }
    }
    // Connections print in a hash order: compare the sorted lines (and the
    // first and last lines in place for stat's header and footer).
    // Apache's expiry queue keeps emptied buckets until their time passes
    // (`0 expire at ...:`); they carry nothing.
    let drop_empty = |t: &str| -> String {
        t.split_inclusive('\n')
            .filter(|l| !l.starts_with("0 expire at "))
            .collect()
    };
    for c in ["cons", "stat", "dump"] {
        let (a, o) = pair.both(c);
        let (na, no) = (normalise(&drop_empty(&a)), normalise(&o));
        let header = |t: &str| t.lines().next().map(str::to_owned);
        if sorted_lines(&na) != sorted_lines(&no) || (c != "cons" && header(&na) != header(&no)) {
            diffs.push(format!("{c}:\n--- apache\n{a}\n--- ours\n{o}"));
        }
    }
    // Watches by session or path: blocks in a hash order.
    for c in ["wchc", "wchp"] {
        let (a, o) = pair.both(c);
        if sorted_blocks(&normalise(&a)) != sorted_blocks(&normalise(&o)) || !o.ends_with("\n\n") {
            diffs.push(format!("{c}:\n--- apache\n{a}\n--- ours\n{o}"));
        }
    }
    // Values are free-form paths and names: the keys, in order.
    for (c, sep) in [("conf", '='), ("envi", '=')] {
        let (a, o) = pair.both(c);
        if keys(&a, sep) != keys(&o, sep) {
            diffs.push(format!("{c} keys:\n--- apache\n{a}\n--- ours\n{o}"));
        }
    }
    // mntr: ours prints a subset of Apache's keys (what this server measures),
    // in Apache's order, starting with the version, the state and every gauge.
    let (a, o) = pair.both("mntr");
    let (ka, ko) = (keys(&a, '\t'), keys(&o, '\t'));
    let mut it = ka.iter();
    for k in &ko {
        if !it.any(|x| x == k) {
            diffs.push(format!("mntr: {k} is not in Apache's keys in this order"));
        }
    }
    for k in ka.iter().take_while(|k| *k != "zk_proposal_count") {
        if !ko.contains(k) {
            diffs.push(format!("mntr: Apache's gauge {k} is missing"));
        }
    }
    let value_of = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t').map(placeholders))
    };
    for k in &ko {
        if k != "zk_version" && value_of(&a, k) != value_of(&o, k) {
            diffs.push(format!(
                "mntr {k}: apache {:?} ours {:?}",
                value_of(&a, k),
                value_of(&o, k)
            ));
        }
    }
    // stmk sets the mask gtmk prints.
    for (flavor, addr) in [("apache", pair.apache.addr()), ("ours", pair.ours.addr())] {
        let set = stmk(addr, 0x1ff);
        let got = cmd(addr, "gtmk");
        if (set.as_str(), got.as_str()) != ("511", "511") {
            diffs.push(format!("{flavor}: stmk 511 -> {set:?}, gtmk -> {got:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "four-letter words differ in shape:\n{}",
        diffs.join("\n\n")
    );
}

#[test]
fn not_whitelisted_commands_answer_like_apache() {
    let pair = Pair::start(ServerOptions::cfg("4lw.commands.whitelist=srvr, ruok"));
    for c in ["stat", "mntr", "cons", "envi", "isro", "wchs"] {
        let (a, o) = pair.both(c);
        assert_eq!(
            a,
            format!("{c} is not executed because it is not in the whitelist.\n")
        );
        assert_eq!(o, a, "{c}");
    }
    let (a, o) = pair.both("ruok");
    assert_eq!((a.as_str(), o.as_str()), ("imok", "imok"));
}

#[test]
fn client_parsers_accept_ours() {
    let server = start_server(Flavor::Ours, ServerOptions::default());
    let (_s1, _s2) = workload(&server);
    let srvr = cmd(server.addr(), "srvr");
    let first = srvr.lines().next().unwrap_or_default();
    assert!(
        go_zookeeper_srvr_version(first),
        "go-zookeeper's srvr regex rejects {first:?}"
    );
    assert!(srvr.lines().any(|l| l == "Mode: standalone"), "{srvr}");
    let cons = cmd(server.addr(), "cons");
    let sessions = cons.lines().filter(|l| go_zookeeper_cons(l)).count();
    assert_eq!(
        sessions, 2,
        "go-zookeeper's cons regex, one line per session:\n{cons}"
    );
    // kazoo's server_version(): `zookeeper.version=` up to the first `-`,
    // dot-separated integers.
    let envi = cmd(server.addr(), "envi");
    let version = envi
        .lines()
        .find_map(|l| l.strip_prefix("zookeeper.version="))
        .expect("zookeeper.version in envi");
    let numbers: Vec<u32> = version
        .split('-')
        .next()
        .unwrap_or_default()
        .split('.')
        .map(|n| n.parse().expect("numeric version"))
        .collect();
    assert_eq!(numbers.len(), 3, "{version}");
    assert_eq!(&numbers[..2], [3, 8]);
    assert_eq!(cmd(server.addr(), "isro"), "rw");
}

#[test]
fn the_regex_checkers_match_what_they_should() {
    assert!(go_zookeeper_srvr_version(
        "Zookeeper version: 3.4.10-39d3a4f269333c922ed3db283be479f9deacaa0f, built on 03/23/2017 10:13 GMT"
    ));
    // Debian's 3.8.0 build date does not match go-zookeeper's regex.
    assert!(!go_zookeeper_srvr_version(
        "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC"
    ));
    assert!(go_zookeeper_cons(
        " /127.0.0.1:54326[1](queued=0,recved=5,sent=5,sid=0x100002d7d090000,lop=GETC,est=1795318854558,to=30000,lcxid=0x4,lzxid=0x5,lresp=2983090,llat=0,minlat=0,avglat=4,maxlat=11)"
    ));
    assert!(!go_zookeeper_cons(
        " /127.0.0.1:54390[0](queued=0,recved=1,sent=0)"
    ));
    assert_eq!(
        placeholders("2 expire at Sun Nov 22 03:41:25 UTC 2026:\n"),
        "N expire at DATE:\n"
    );
    assert_eq!(
        placeholders("\tip: /127.0.0.1:54448 sessionId: 0x0\n"),
        "\tip: /N.N.N.N:N sessionId: 0xH\n"
    );
}

/// The `cnt_` of mntr's start-up summaries.
fn startup_counts(server: &ZkServer) -> Vec<String> {
    let mntr = four_letter(server.addr(), "mntr").expect("mntr");
    let mut v: Vec<String> = mntr
        .lines()
        .filter(|l| l.starts_with("zk_cnt_dbinittime") || l.starts_with("zk_cnt_startup_"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Regression: mntr had no `dbinittime` / `startup_*` summaries (Apache's
/// ZKDatabase.loadDataBase and FileTxnSnapLog.restore record them once per
/// start; the txn ones only when the log had txns to replay).
#[test]
fn startup_figures_count_the_recovery() {
    let ours = start_server(Flavor::Ours, ServerOptions::default());
    let apache = start_server(Flavor::Apache, ServerOptions::default());
    assert_eq!(
        startup_counts(&ours),
        startup_counts(&apache),
        "a fresh start"
    );
    assert_eq!(
        startup_counts(&ours),
        [
            "zk_cnt_dbinittime\t1",
            "zk_cnt_startup_snap_load_time\t1",
            "zk_cnt_startup_txns_load_time\t0",
            "zk_cnt_startup_txns_loaded\t0",
        ]
    );
    let mut ours = ours;
    {
        let mut c = Client::connect(ours.addr()).expect("session");
        for i in 0..5 {
            c.create(&format!("/n{i}"), b"x", 0).unwrap().unwrap();
        }
    }
    ours.restart();
    let mntr = four_letter(ours.addr(), "mntr").expect("mntr");
    let value = |k: &str| -> i64 {
        mntr.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}\t")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    assert_eq!(value("zk_cnt_startup_txns_loaded"), 1, "{mntr}");
    assert!(value("zk_sum_startup_txns_loaded") >= 5, "{mntr}");
}

/// Regression: a connection stayed in `cons`/`stat` (and the per-address
/// count) until after its socket was shut down, so a client's next `stat`
/// could list the `cons` connection it had just read to its end (CI saw
/// four client lines where Apache printed three). The window was narrow:
/// the old binary failed this within 2000 rounds only with the cores busy.
#[test]
fn a_closed_connection_is_gone_from_the_next_cons() {
    let server = start_server(Flavor::Ours, ServerOptions::default());
    for round in 0..2000 {
        let out = cmd(server.addr(), "cons");
        let clients = out.lines().filter(|l| l.starts_with(" /")).count();
        assert_eq!(
            clients, 1,
            "round {round}: cons lists more than itself:\n{out}"
        );
    }
}
