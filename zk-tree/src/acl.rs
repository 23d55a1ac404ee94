//! ACLs: permission checks (world, auth, digest, ip, super), the `auth` scheme
//! substitution of create/setACL, the digest helper, and the interning cache
//! that lets every znode carry a 4-byte ACL reference (as ZooKeeper's
//! `ReferenceCountedACLCache`).

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use hashbrown::HashMap;
use sha1::{Digest as _, Sha1};
use zk_jute::{Acl, ErrorCode, Id, perms};

/// Who is asking: a session's authenticated ids (as the server keeps them:
/// `ip:<client address>`, `digest:user:hash`, ...) and whether it is the super
/// user (authenticated with the configured super digest, or holding an id of
/// scheme `super`). The super user passes every ACL check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Auth<'a> {
    /// The session's ids.
    pub ids: &'a [Id],
    /// Grants the super user whatever the ids (for tools that read
    /// everything). A server passes its sessions' ids with [`Auth::new`].
    pub is_super: bool,
}

impl<'a> Auth<'a> {
    /// A session authenticated as `ids`. It is the super user if one of them
    /// has scheme `super` (the server adds `super:` when the configured
    /// superDigest matches): that rule lives only in [`Auth::is_super`].
    pub fn new(ids: &'a [Id]) -> Self {
        Auth {
            ids,
            is_super: false,
        }
    }

    /// Whether every ACL check passes: `is_super`, or an id of scheme `super`.
    fn is_super(&self) -> bool {
        self.is_super || self.ids.iter().any(|i| i.scheme == "super")
    }
}

/// `world:anyone` with every permission (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// `world:anyone` with READ only (`ZooDefs.Ids.READ_ACL_UNSAFE`).
pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::READ,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// The digest id of `user:password`: `user:base64(sha1("user:password"))`, as
/// `DigestAuthenticationProvider.generateDigest`. The user part ends at the
/// first `:`.
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Whether client address `addr` matches the ip ACL expression `addr[/bits]`
/// (`IPAuthenticationProvider.matches`).
pub fn ip_matches(addr: &str, acl_expr: &str) -> bool {
    let (net, bits) = match acl_expr.split_once('/') {
        Some((n, b)) => (n, Some(b)),
        None => (acl_expr, None),
    };
    let Some(net) = addr_bytes(net) else {
        return false;
    };
    let bits = match bits {
        None => net.len() * 8,
        Some(b) => match b.parse::<i32>() {
            Ok(b) if b >= 0 && (b as usize) <= net.len() * 8 => b as usize,
            _ => return false,
        },
    };
    let Some(remote) = addr_bytes(addr) else {
        return false;
    };
    if remote.len() != net.len() {
        return false;
    }
    (0..net.len()).all(|i| {
        let keep = bits.saturating_sub(i * 8).min(8);
        let mask: u8 = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        remote[i] & mask == net[i] & mask
    })
}

fn addr_bytes(s: &str) -> Option<Vec<u8>> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some(a.octets().to_vec()),
        IpAddr::V6(a) => Some(a.octets().to_vec()),
    }
}

/// Which id schemes the server accepts in ACLs besides `world:anyone`,
/// `auth`, `digest` and `ip` (e.g. `x509`, `sasl`), matched by equality.
fn scheme_known(scheme: &str, extra: &[String]) -> bool {
    scheme == "digest" || scheme == "ip" || extra.iter().any(|s| s == scheme)
}

fn id_valid(id: &Id) -> bool {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').count() == 2,
        "ip" => {
            let (net, bits) = match id.id.split_once('/') {
                Some((n, b)) => (n, Some(b)),
                None => (id.id.as_str(), None),
            };
            match addr_bytes(net) {
                None => false,
                Some(a) => bits.is_none_or(|b| {
                    b.parse::<i32>()
                        .is_ok_and(|b| b >= 0 && (b as usize) <= a.len() * 8)
                }),
            }
        }
        "x509" => x500_name_valid(&id.id),
        _ => true,
    }
}

/// The attribute keywords Java's `X500Principal` takes in a name.
const X500_KEYWORDS: &[&str] = &[
    "CN",
    "C",
    "L",
    "S",
    "ST",
    "O",
    "OU",
    "T",
    "IP",
    "STREET",
    "DC",
    "DNQUALIFIER",
    "DNQ",
    "SURNAME",
    "GIVENNAME",
    "INITIALS",
    "GENERATION",
    "EMAIL",
    "EMAILADDRESS",
    "UID",
    "SERIALNUMBER",
];

/// Whether `name` parses as an RFC 2253 distinguished name, as ZooKeeper's
/// `X509AuthenticationProvider.isValid` asks of `new X500Principal(name)`:
/// empty, or attribute-value pairs `type=value` (a keyword or a dotted OID
/// as the type) separated by unescaped `,`, `;` or `+`.
fn x500_name_valid(name: &str) -> bool {
    if name.trim().is_empty() {
        return true;
    }
    let mut avas = Vec::new();
    let mut current = String::new();
    let mut chars = name.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                match chars.next() {
                    Some(n) => current.push(n),
                    None => return false,
                }
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' | ';' | '+' if !quoted => avas.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return false;
    }
    avas.push(current);
    avas.iter().all(|ava| {
        let Some((ty, _)) = ava.split_once('=') else {
            return false;
        };
        let ty = ty.trim();
        let keyword = X500_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(ty));
        let digits = ty
            .strip_prefix("OID.")
            .or_else(|| ty.strip_prefix("oid."))
            .unwrap_or(ty);
        let oid = digits.split('.').count() >= 2
            && digits
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        keyword || oid
    })
}

/// Checks and expands an ACL given to create or setACL, as
/// `PrepRequestProcessor.fixupACL`: duplicates removed, an empty list,
/// an unknown scheme or an invalid id is [`ErrorCode::InvalidAcl`], and `auth`
/// entries are replaced by the session's authenticated ids (ip and super ids
/// do not count: INVALIDACL when none is left).
pub fn fixup_acl(
    acl: &[Acl],
    auth: &Auth<'_>,
    extra_schemes: &[String],
) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(acl.len());
    // Each distinct entry once, in the order first given.
    for (i, a) in acl.iter().enumerate() {
        if acl[..i].contains(a) {
            continue;
        }
        let id = &a.id;
        if id.scheme == "world" && id.id == "anyone" {
            out.push(a.clone());
        } else if id.scheme == "auth" {
            let mut any = false;
            for cid in auth.ids {
                // Providers whose ids count as authenticated: digest and the
                // configured extra schemes; ip is not (isAuthenticated false),
                // super has no provider.
                if cid.scheme == "digest" || extra_schemes.contains(&cid.scheme) {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        id: cid.clone(),
                    });
                }
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if scheme_known(&id.scheme, extra_schemes) && id_valid(id) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// Checks that `auth` holds permission `perm` on a node with ACL `acl`, as
/// `ZooKeeperServer.checkACL`: an empty ACL and the super user pass; an entry
/// grants when it has the bit and is `world:anyone`, or its scheme matches one
/// of the session's ids (digest and other schemes by equality, ip by
/// [`ip_matches`]). Otherwise [`ErrorCode::NoAuth`].
pub fn check_acl(acl: &[Acl], perm: i32, auth: &Auth<'_>) -> Result<(), ErrorCode> {
    if acl.is_empty() || auth.is_super() {
        return Ok(());
    }
    for a in acl {
        if a.perms & perm == 0 {
            continue;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return Ok(());
        }
        for id in auth.ids {
            if id.scheme != a.id.scheme {
                continue;
            }
            let ok = if id.scheme == "ip" {
                ip_matches(&id.id, &a.id.id)
            } else {
                id.id == a.id.id
            };
            if ok {
                return Ok(());
            }
        }
    }
    Err(ErrorCode::NoAuth)
}

/// Interned ACL lists with reference counts; a znode holds a `u32` index.
#[derive(Debug, Default, Clone)]
pub(crate) struct AclCache {
    slots: Vec<Option<(Arc<[Acl]>, u64)>>,
    index: HashMap<Arc<[Acl]>, u32>,
    free: Vec<u32>,
    /// The list interned last: a run of nodes with one ACL (a create load)
    /// compares it instead of hashing every list.
    last: u32,
}

impl AclCache {
    /// Interns `acl` and takes one reference.
    pub(crate) fn intern(&mut self, acl: &[Acl]) -> u32 {
        if let Some(Some((list, refs))) = self.slots.get_mut(self.last as usize)
            && **list == *acl
        {
            *refs += 1;
            return self.last;
        }
        let i = self.intern_slow(acl);
        self.last = i;
        i
    }

    fn intern_slow(&mut self, acl: &[Acl]) -> u32 {
        if let Some(&i) = self.index.get(acl) {
            if let Some((_, refs)) = &mut self.slots[i as usize] {
                *refs += 1;
            }
            return i;
        }
        let list: Arc<[Acl]> = acl.into();
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some((list.clone(), 1));
                i
            }
            None => {
                self.slots.push(Some((list.clone(), 1)));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(list, i);
        i
    }

    /// Takes one more reference to list `i`.
    pub(crate) fn add_ref(&mut self, i: u32) {
        if let Some(Some((_, refs))) = self.slots.get_mut(i as usize) {
            *refs += 1;
        }
    }

    /// Drops one reference to list `i`.
    pub(crate) fn release(&mut self, i: u32) {
        let Some(slot) = self.slots.get_mut(i as usize) else {
            return;
        };
        let gone = match slot {
            Some((_, refs)) => {
                *refs -= 1;
                *refs == 0
            }
            None => false,
        };
        if gone {
            if let Some((list, _)) = slot.take() {
                self.index.remove(&list);
            }
            self.free.push(i);
        }
    }

    /// The list at `i` (empty if unknown).
    pub(crate) fn get(&self, i: u32) -> Arc<[Acl]> {
        match self.slots.get(i as usize) {
            Some(Some((l, _))) => l.clone(),
            _ => Arc::from(Vec::new()),
        }
    }

    pub(crate) fn get_ref(&self, i: u32) -> &[Acl] {
        match self.slots.get(i as usize) {
            Some(Some((l, _))) => l,
            _ => &[],
        }
    }

    /// The lists in use, by index.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Arc<[Acl]>)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|(l, _)| (i as u32, l)))
    }

    /// Number of distinct lists.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    /// x509 ACL ids must be X.500 names, as ZooKeeper's X509 provider asks.
    #[test]
    fn x509_ids_are_distinguished_names() {
        for good in [
            "",
            "CN=client,O=zk-rs",
            "cn=a+OU=b; O=c",
            "2.5.4.3=x",
            "OID.2.5.4.3=x",
            "CN=a\\,b",
            "CN=\"a,b\"",
        ] {
            assert!(super::x500_name_valid(good), "{good:?}");
        }
        for bad in ["garbage", "CN=a,", "FOO=bar", "=x", "CN=a\\", "CN=\"a"] {
            assert!(!super::x500_name_valid(bad), "{bad:?}");
        }
    }

    use super::*;

    fn id(s: &str, i: &str) -> Id {
        Id {
            scheme: s.into(),
            id: i.into(),
        }
    }

    #[test]
    fn digest_matches_zookeeper() {
        // Value from ZooKeeper's documentation / tests: super:test.
        assert_eq!(
            digest_id("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn ip_masks() {
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("10.1.2.3", "10.1.2.3"));
        assert!(ip_matches("10.1.2.3", "10.1.2.0/23"));
        assert!(!ip_matches("10.1.2.3", "10.1.2.3/33"));
        assert!(ip_matches("1.2.3.4", "0.0.0.0/0"));
        assert!(!ip_matches("::1", "127.0.0.1"));
        assert!(ip_matches("::1", "::1/128"));
    }

    #[test]
    #[allow(
        clippy::too_many_lines,
        reason = "one table of cases, read top to bottom"
    )]
    fn checks_and_fixup() {
        let d = digest_id("u:p");
        let acl = vec![Acl {
            perms: perms::READ,
            id: id("digest", &d),
        }];
        let me = [id("ip", "127.0.0.1"), id("digest", &d)];
        let anon = [id("ip", "127.0.0.1")];
        assert_eq!(
            check_acl(
                &acl,
                perms::READ,
                &Auth {
                    ids: &me,
                    is_super: false
                }
            ),
            Ok(())
        );
        assert_eq!(
            check_acl(
                &acl,
                perms::WRITE,
                &Auth {
                    ids: &me,
                    is_super: false
                }
            ),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check_acl(
                &acl,
                perms::READ,
                &Auth {
                    ids: &anon,
                    is_super: false
                }
            ),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check_acl(
                &acl,
                perms::WRITE,
                &Auth {
                    ids: &anon,
                    is_super: true
                }
            ),
            Ok(())
        );
        let auth_acl = vec![Acl {
            perms: perms::ALL,
            id: id("auth", ""),
        }];
        assert_eq!(
            fixup_acl(
                &auth_acl,
                &Auth {
                    ids: &anon,
                    is_super: false
                },
                &[]
            ),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(
                &auth_acl,
                &Auth {
                    ids: &me,
                    is_super: false
                },
                &[]
            ),
            Ok(vec![Acl {
                perms: perms::ALL,
                id: id("digest", &d)
            }])
        );
        assert_eq!(
            fixup_acl(&[], &Auth::default(), &[]),
            Err(ErrorCode::InvalidAcl)
        );
        let bad = vec![Acl {
            perms: 1,
            id: id("world", "someone"),
        }];
        assert_eq!(
            fixup_acl(&bad, &Auth::default(), &[]),
            Err(ErrorCode::InvalidAcl)
        );
        let badip = vec![Acl {
            perms: 1,
            id: id("ip", "10.0.0.0/99"),
        }];
        assert_eq!(
            fixup_acl(&badip, &Auth::default(), &[]),
            Err(ErrorCode::InvalidAcl)
        );
        let dup = [open_acl_unsafe(), open_acl_unsafe()].concat();
        assert_eq!(
            fixup_acl(&dup, &Auth::default(), &[]),
            Ok(open_acl_unsafe())
        );
    }

    #[test]
    fn cache_refcounts() {
        let mut c = AclCache::default();
        let a = c.intern(&open_acl_unsafe());
        let b = c.intern(&open_acl_unsafe());
        assert_eq!(a, b);
        let r = c.intern(&read_acl_unsafe());
        assert_ne!(a, r);
        c.release(a);
        assert_eq!(&*c.get(a), &open_acl_unsafe()[..]);
        c.release(a);
        assert_eq!(c.len(), 1);
        let again = c.intern(&open_acl_unsafe());
        assert_eq!(again, a);
    }

    /// Pins the cache's shortcut for the list interned last: once that list
    /// is released and its slot reused by another, interning the first list
    /// again must not take the slot.
    #[test]
    fn the_last_interned_shortcut_follows_slot_reuse() {
        let mut c = AclCache::default();
        let a = c.intern(&open_acl_unsafe());
        c.release(a);
        let r = c.intern(&read_acl_unsafe());
        assert_eq!(r, a, "the freed slot is reused");
        let o = c.intern(&open_acl_unsafe());
        assert_ne!(o, r);
        assert_eq!(&*c.get(o), &open_acl_unsafe()[..]);
        assert_eq!(&*c.get(r), &read_acl_unsafe()[..]);
        assert_eq!(c.intern(&open_acl_unsafe()), o);
        c.release(o);
        c.release(o);
        assert_eq!(c.len(), 1);
        assert_eq!(c.intern(&read_acl_unsafe()), r);
    }
}
