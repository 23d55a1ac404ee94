//! Node blocks: byte strings addressed by 32-bit handles.
//!
//! A block of up to [`MAX_SMALL`] bytes lives in a 64 KiB page that holds
//! blocks of one size only, rounded up to 4 bytes (256 size classes); a
//! handle is the page number and the 4-byte offset in it. Freed blocks of a
//! page are chained through their first two bytes and reused first; a page
//! whose last block is freed goes back to the allocator unless it is the only
//! page of its size with room. Bigger blocks (and, past 8 GiB of small ones,
//! every block) are boxed apart and addressed through a side table.
//!
//! Against a boxed slice per node this saves the 16-byte fat pointer (a
//! handle is 4 bytes) and the allocator's size-class rounding (up to 16 bytes
//! at 100-byte data: 4 here): 1M znodes of 100 B use ~25 MB less.

use std::num::NonZeroU32;

const PAGE_BYTES: usize = 1 << 16;
const UNIT: usize = 4;
const OFFSET_BITS: u32 = 14;
const PAGE_UNITS: usize = PAGE_BYTES / UNIT;
/// Largest block kept in pages.
pub(crate) const MAX_SMALL: usize = 1024;
const MAX_UNITS: usize = MAX_SMALL / UNIT;
/// Handles with this bit set index the side table of big blocks.
const LARGE: u32 = 1 << 31;
/// Pages a handle can address: 8 GiB of small blocks.
const MAX_PAGES: usize = (LARGE >> OFFSET_BITS) as usize;
const NIL: u16 = u16::MAX;
const NO_PAGE: u32 = u32::MAX;

/// A block's handle (its raw value plus one, so that `Option<Block>` is 4
/// bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block(NonZeroU32);

impl Block {
    fn new(raw: u32) -> Block {
        Block(NonZeroU32::new(raw.wrapping_add(1)).expect("raw handle below u32::MAX"))
    }

    fn raw(self) -> u32 {
        self.0.get() - 1
    }
}

#[derive(Clone)]
struct Page {
    /// Empty while the page is released.
    mem: Box<[u8]>,
    /// Block size in 4-byte units.
    units: u16,
    live: u16,
    /// Offset (units) of the first freed block, or [`NIL`].
    free: u16,
    /// Offset (units) of the first never-used unit.
    bump: u16,
    /// Neighbours in the list of pages of this size with room.
    prev: u32,
    next: u32,
    listed: bool,
}

impl Page {
    fn full(&self) -> bool {
        self.free == NIL && usize::from(self.bump) + usize::from(self.units) > PAGE_UNITS
    }
}

enum Where {
    Large(usize),
    Page(usize, std::ops::Range<usize>),
}

/// The block store.
#[derive(Clone)]
pub(crate) struct Arena {
    pages: Vec<Page>,
    /// Released page numbers, for reuse.
    spare_pages: Vec<u32>,
    /// Per size (units): the first page with room, or [`NO_PAGE`].
    heads: Vec<u32>,
    large: Vec<Option<Box<[u8]>>>,
    spare_large: Vec<u32>,
}

impl Default for Arena {
    fn default() -> Self {
        Arena {
            pages: Vec::new(),
            spare_pages: Vec::new(),
            heads: vec![NO_PAGE; MAX_UNITS + 1],
            large: Vec::new(),
            spare_large: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("pages", &self.pages_in_use())
            .field("large", &(self.large.len() - self.spare_large.len()))
            .finish()
    }
}

impl Arena {
    /// A new block of `len` bytes (zeroed or left over from a freed block:
    /// the caller writes all of it) and its bytes.
    pub(crate) fn alloc(&mut self, len: usize) -> (Block, &mut [u8]) {
        let units = len.div_ceil(UNIT).max(1);
        if units <= MAX_UNITS
            && let Some(p) = self.page_with_room(units)
        {
            let page = &mut self.pages[p as usize];
            let off = if page.free != NIL {
                let o = page.free;
                let at = usize::from(o) * UNIT;
                page.free = u16::from_le_bytes([page.mem[at], page.mem[at + 1]]);
                o
            } else {
                let o = page.bump;
                page.bump += units as u16;
                o
            };
            page.live += 1;
            if page.full() {
                self.unlink(p);
            }
            let raw = (p << OFFSET_BITS) | u32::from(off);
            let at = usize::from(off) * UNIT;
            let mem = &mut self.pages[p as usize].mem[at..at + len];
            return (Block::new(raw), mem);
        }
        let boxed = vec![0u8; len].into_boxed_slice();
        let i = match self.spare_large.pop() {
            Some(i) => {
                self.large[i as usize] = Some(boxed);
                i
            }
            None => {
                self.large.push(Some(boxed));
                (self.large.len() - 1) as u32
            }
        };
        let mem = self.large[i as usize].as_deref_mut().expect("just stored");
        (Block::new(LARGE | i), mem)
    }

    /// The block's bytes: exactly its length for a big block, rounded up to
    /// 4 bytes for a small one (the caller's encoding knows its length).
    #[inline]
    pub(crate) fn get(&self, b: Block) -> &[u8] {
        match self.locate(b) {
            Where::Large(i) => self.large[i].as_deref().expect("live block"),
            Where::Page(p, r) => &self.pages[p].mem[r],
        }
    }

    /// [`Arena::get`], writable.
    pub(crate) fn get_mut(&mut self, b: Block) -> &mut [u8] {
        match self.locate(b) {
            Where::Large(i) => self.large[i].as_deref_mut().expect("live block"),
            Where::Page(p, r) => &mut self.pages[p].mem[r],
        }
    }

    /// Where a block's bytes are: a side-table entry, or a page and the
    /// range of its size class there.
    #[inline]
    fn locate(&self, b: Block) -> Where {
        let raw = b.raw();
        if raw & LARGE != 0 {
            return Where::Large((raw & !LARGE) as usize);
        }
        let p = (raw >> OFFSET_BITS) as usize;
        let at = (raw as usize & (PAGE_UNITS - 1)) * UNIT;
        Where::Page(p, at..at + usize::from(self.pages[p].units) * UNIT)
    }

    /// Frees a block; its handle must not be used again.
    pub(crate) fn free(&mut self, b: Block) {
        let raw = b.raw();
        if raw & LARGE != 0 {
            self.large[(raw & !LARGE) as usize] = None;
            self.spare_large.push(raw & !LARGE);
            return;
        }
        let p = raw >> OFFSET_BITS;
        let off = (raw as usize & (PAGE_UNITS - 1)) as u16;
        let page = &mut self.pages[p as usize];
        let at = usize::from(off) * UNIT;
        page.mem[at..at + 2].copy_from_slice(&page.free.to_le_bytes());
        page.free = off;
        page.live -= 1;
        let (live, listed) = (page.live, page.listed);
        if !listed {
            self.link(p);
        }
        let page = &self.pages[p as usize];
        if live == 0 && (page.prev != NO_PAGE || page.next != NO_PAGE) {
            // Another page of this size has room: give this one back.
            self.unlink(p);
            self.pages[p as usize].mem = Box::default();
            self.spare_pages.push(p);
        }
    }

    /// Pages holding memory (64 KiB each).
    pub(crate) fn pages_in_use(&self) -> usize {
        self.pages.len() - self.spare_pages.len()
    }

    fn page_with_room(&mut self, units: usize) -> Option<u32> {
        let head = self.heads[units];
        if head != NO_PAGE {
            return Some(head);
        }
        let page = Page {
            mem: vec![0u8; PAGE_BYTES].into_boxed_slice(),
            units: units as u16,
            live: 0,
            free: NIL,
            bump: 0,
            prev: NO_PAGE,
            next: NO_PAGE,
            listed: false,
        };
        let p = match self.spare_pages.pop() {
            Some(p) => {
                self.pages[p as usize] = page;
                p
            }
            None if self.pages.len() < MAX_PAGES => {
                self.pages.push(page);
                (self.pages.len() - 1) as u32
            }
            None => return None,
        };
        self.link(p);
        Some(p)
    }

    /// Puts page `p` first in its size's list.
    fn link(&mut self, p: u32) {
        let units = usize::from(self.pages[p as usize].units);
        let head = self.heads[units];
        if head != NO_PAGE {
            self.pages[head as usize].prev = p;
        }
        let page = &mut self.pages[p as usize];
        page.prev = NO_PAGE;
        page.next = head;
        page.listed = true;
        self.heads[units] = p;
    }

    fn unlink(&mut self, p: u32) {
        let page = &mut self.pages[p as usize];
        let (prev, next, units) = (page.prev, page.next, usize::from(page.units));
        page.prev = NO_PAGE;
        page.next = NO_PAGE;
        page.listed = false;
        if prev == NO_PAGE {
            self.heads[units] = next;
        } else {
            self.pages[prev as usize].next = next;
        }
        if next != NO_PAGE {
            self.pages[next as usize].prev = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(a: &mut Arena, len: usize, tag: u8) -> Block {
        let (b, mem) = a.alloc(len);
        mem.fill(tag);
        b
    }

    #[test]
    fn blocks_keep_their_bytes_and_sizes() {
        let mut a = Arena::default();
        let lens = [0, 1, 2, 3, 4, 5, 119, 120, 121, 1023, 1024, 1025, 70_000];
        let blocks: Vec<(Block, usize, u8)> = lens
            .iter()
            .enumerate()
            .map(|(i, &l)| (fill(&mut a, l, i as u8 + 1), l, i as u8 + 1))
            .collect();
        for &(b, l, tag) in &blocks {
            let got = a.get(b);
            assert!(got.len() >= l && got.len() < l.max(1) + UNIT || l > MAX_SMALL);
            assert!(got[..l].iter().all(|&x| x == tag), "len {l}");
            if l > MAX_SMALL {
                assert_eq!(got.len(), l);
            }
        }
        for &(b, _, _) in &blocks {
            a.free(b);
        }
        assert!(a.large.iter().all(Option::is_none));
    }

    #[test]
    fn freed_blocks_are_reused_and_empty_pages_returned() {
        let mut a = Arena::default();
        let per_page = PAGE_UNITS / 30; // 120-byte blocks
        let n = per_page * 5 + 7;
        let blocks: Vec<Block> = (0..n).map(|i| fill(&mut a, 120, i as u8)).collect();
        assert_eq!(a.pages_in_use(), 6);
        // Free every other block: no page empties, each has room again.
        for b in blocks.iter().step_by(2) {
            a.free(*b);
        }
        assert_eq!(a.pages_in_use(), 6);
        let again: Vec<Block> = (0..n.div_ceil(2))
            .map(|_| fill(&mut a, 118, 0xee))
            .collect();
        assert_eq!(a.pages_in_use(), 6, "reused, no new page");
        for (i, b) in blocks.iter().enumerate().skip(1).step_by(2) {
            assert!(a.get(*b)[..120].iter().all(|&x| x == i as u8));
        }
        // Free all: every page but one per size goes back.
        for b in blocks.iter().skip(1).step_by(2).chain(&again) {
            a.free(*b);
        }
        assert_eq!(a.pages_in_use(), 1);
        // A different size gets its own page; the same size reuses the kept one.
        let x = fill(&mut a, 8, 1);
        assert_eq!(a.pages_in_use(), 2);
        let y = fill(&mut a, 117, 2);
        assert_eq!(a.pages_in_use(), 2);
        assert_eq!(&a.get(x)[..8], &[1; 8]);
        assert!(a.get(y).len() == 120 && a.get(y)[..117].iter().all(|&v| v == 2));
    }

    #[test]
    fn random_churn_matches_a_model() {
        let mut a = Arena::default();
        let mut live: Vec<(Block, Vec<u8>)> = Vec::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for step in 0..60_000u64 {
            let r = next();
            if live.is_empty() || r % 3 != 0 {
                let len = match r % 10 {
                    0 => (r >> 8) as usize % 5000,
                    _ => (r >> 8) as usize % 300,
                };
                let bytes: Vec<u8> = (0..len).map(|i| (i as u64 ^ step) as u8).collect();
                let (b, mem) = a.alloc(len);
                mem.copy_from_slice(&bytes);
                live.push((b, bytes));
            } else {
                let i = (r >> 16) as usize % live.len();
                let (b, bytes) = live.swap_remove(i);
                assert_eq!(&a.get(b)[..bytes.len()], &bytes[..]);
                a.free(b);
            }
            if step % 7919 == 0 {
                for (b, bytes) in &live {
                    assert_eq!(&a.get(*b)[..bytes.len()], &bytes[..]);
                }
            }
        }
        for (b, _) in live.drain(..) {
            a.free(b);
        }
        assert!(
            a.pages_in_use() <= MAX_UNITS,
            "one kept page per size at most"
        );
        assert_eq!(std::mem::size_of::<Option<Block>>(), 4);
    }
}
