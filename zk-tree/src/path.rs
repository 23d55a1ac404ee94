//! Path syntax, as ZooKeeper's `PathUtils.validatePath`.

use zk_jute::ErrorCode;

/// Checks `path` against ZooKeeper's path rules: absolute, no trailing `/`
/// (except the root), no empty, `.` or `..` components, and none of the
/// characters ZooKeeper refuses (NUL, C0/C1 controls, U+D800..U+F8FF,
/// U+FFF0..U+FFFF and, as Java sees them as surrogates, everything above
/// U+FFFF). Fails with [`ErrorCode::BadArguments`], as the server does.
pub fn validate_path(path: &str) -> Result<(), ErrorCode> {
    if check(path) {
        Ok(())
    } else {
        Err(ErrorCode::BadArguments)
    }
}

/// ZooKeeper's PathUtils rules, one pass over the components, no allocation
/// (the request path of every write goes through here). A NUL is among the
/// forbidden characters.
fn check(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true; // "/"
    }
    if rest.is_ascii() {
        return check_ascii(rest.as_bytes());
    }
    // An empty component is "//" or a trailing '/'.
    rest.split('/').all(|comp| {
        !comp.is_empty() && comp != "." && comp != ".." && comp.chars().all(|c| !forbidden(c))
    })
}

/// [`check`] of an ASCII path after its leading '/', in one pass over the
/// bytes: the paths of nearly every request (the per-character decoding and
/// four range tests were ~500 instructions a request).
fn check_ascii(rest: &[u8]) -> bool {
    let mut start = 0;
    for (i, &b) in rest.iter().enumerate() {
        if b == b'/' {
            if !component_ok(&rest[start..i]) {
                return false;
            }
            start = i + 1;
        } else if b < 0x20 || b == 0x7f {
            return false;
        }
    }
    component_ok(&rest[start..])
}

fn component_ok(comp: &[u8]) -> bool {
    !comp.is_empty() && comp != b"." && comp != b".."
}

/// Characters PathUtils rejects: NUL, C0 and C1 controls, DEL, the private use
/// area, and U+FFF0 up (in Java's UTF-16, every surrogate: all of Unicode past
/// U+FFFF).
fn forbidden(c: char) -> bool {
    c == '\0'
        || ('\u{1}'..='\u{1f}').contains(&c)
        || ('\u{7f}'..='\u{9f}').contains(&c)
        || ('\u{e000}'..='\u{f8ff}').contains(&c)
        || c >= '\u{fff0}'
}

/// Splits `path` at its last `/` into (parent, name), as ZooKeeper does
/// (`"/a"` gives `("", "a")`; the empty parent is the root). `None` if there is
/// no `/`.
pub(crate) fn split(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    Some((&path[..i], &path[i + 1..]))
}

/// `path` as (parent path, name) of a node that a create or a delete can
/// name: `None` for an empty name (`"/a/"`) and for the parent `"/"`
/// (`"//a"`): `"/"` names the root only as a whole path (a top-level node's
/// parent is `""`), so `"//a"` would reach `/a` under another path, and
/// digest. No prep lets either through; a hostile leader's txn may.
pub(crate) fn split_node(path: &str) -> Option<(&str, &str)> {
    split(path).filter(|(parent, name)| !name.is_empty() && *parent != "/")
}

/// The path watches on a parent are keyed by: `""` (the root's alias) is `/`.
pub(crate) fn watch_path(parent: &str) -> &str {
    if parent.is_empty() { "/" } else { parent }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules_match_path_utils() {
        for ok in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/..a",
            "/a..",
            "/.a/b",
            "/a/.../b",
            "/zookeeper",
            "/é",
        ] {
            assert_eq!(validate_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a/.",
            "/a\0b",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{9f}",
            "/\u{e000}",
            "/\u{fff0}",
            "/\u{1f600}",
        ] {
            assert_eq!(validate_path(bad), Err(ErrorCode::BadArguments), "{bad:?}");
        }
    }

    /// The rules as first written: a character-by-character transcription of
    /// PathUtils.validatePath, kept as the model for the one-pass version.
    fn model(path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        if chars.is_empty() || chars[0] != '/' {
            return false;
        }
        if chars.len() == 1 {
            return true;
        }
        if chars[chars.len() - 1] == '/' {
            return false;
        }
        let mut last = '/';
        for i in 1..chars.len() {
            let c = chars[i];
            let next_ends = i + 1 == chars.len() || chars[i + 1] == '/';
            if c == '\0' || (c == '/' && last == '/') {
                return false;
            } else if c == '.' && last == '.' {
                if chars[i - 2] == '/' && next_ends {
                    return false;
                }
            } else if c == '.' {
                if chars[i - 1] == '/' && next_ends {
                    return false;
                }
            } else if ('\u{1}'..='\u{1f}').contains(&c)
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || ('\u{e000}'..='\u{f8ff}').contains(&c)
                || c >= '\u{fff0}'
            {
                return false;
            }
            last = c;
        }
        true
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn one_pass_check_agrees_with_the_model(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "/", ".", "..", "...", "a", "zk", "\0", "\u{1}", "\u{1f}", " ", "\u{7f}",
                        "\u{80}", "\u{9f}", "\u{a0}", "é", "\u{e000}", "\u{f8ff}", "\u{f900}",
                        "\u{ffef}", "\u{fff0}", "\u{ffff}", "\u{10000}", "\u{1f600}",
                    ]).prop_map(String::from),
                    "\\PC{0,3}",
                ],
                0..8,
            )
        ) {
            let path: String = parts.concat();
            proptest::prop_assert_eq!(check(&path), model(&path), "{:?}", path);
        }
    }

    #[test]
    fn split_at_last_slash() {
        assert_eq!(split("/a"), Some(("", "a")));
        assert_eq!(split("/a/b"), Some(("/a", "b")));
        assert_eq!(split("/"), Some(("", "")));
        assert_eq!(split("a"), None);
        assert_eq!(split_node("/a/b"), Some(("/a", "b")));
        assert_eq!(split_node("/a"), Some(("", "a")));
        assert_eq!(split_node("//a"), None);
        assert_eq!(split_node("/a/"), None);
        assert_eq!(split_node("/"), None);
    }
}
