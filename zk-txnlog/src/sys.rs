//! The only module with `unsafe`: the shared file mapping, `fallocate` and `posix_fadvise`.
//!
//! Everything else in the crate goes through the safe functions here. Callers guarantee that
//! concurrent `write_at` / `read_at` calls on one mapping touch disjoint byte ranges (the log
//! only reads below the durable end and only the sync thread writes above it; truncation zeroes
//! under an exclusive lock), so no two threads race on the same bytes.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;

use memmap2::MmapRaw;

/// Reserve `len` bytes of blocks for `file` (extending it to `len`), so later writes into the
/// range cannot fail for lack of space (a mapped write into a hole on a full disk is a SIGBUS).
/// Falls back to writing zeros where the filesystem has no `fallocate`.
pub(crate) fn preallocate(file: &File, len: u64) -> io::Result<()> {
    if reserve(file, len)? {
        Ok(())
    } else {
        zero_fill(file, len)
    }
}

/// `fallocate(fd, 0, 0, len)`: reserve blocks (as *unwritten* extents on ext4/xfs) and extend
/// the file to `len`. `Ok(false)` where the filesystem does not support it (EOPNOTSUPP /
/// ENOSYS, e.g. some tmpfs): nothing was done.
pub(crate) fn reserve(file: &File, len: u64) -> io::Result<bool> {
    let off_len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment size too large"))?;
    loop {
        // SAFETY: `fallocate` takes a file descriptor and two integers; the descriptor is owned
        // by `file`, which outlives the call. No memory is passed to the kernel.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, off_len) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Fallback for filesystems without `fallocate`: write zeros up to `len`.
fn zero_fill(file: &File, len: u64) -> io::Result<()> {
    const CHUNK: usize = 1 << 20;
    let zeros = vec![0u8; CHUNK];
    let mut at = file.metadata()?.len().min(len);
    while at < len {
        let n = usize::try_from((len - at).min(CHUNK as u64)).unwrap_or(CHUNK);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// `posix_fadvise(SEQUENTIAL)` over all of `file`: a hint that it is read
/// once from start to end (the kernel doubles its read-ahead).
pub(crate) fn advise_sequential(file: &File) -> io::Result<()> {
    fadvise(file, libc::POSIX_FADV_SEQUENTIAL)
}

/// `posix_fadvise(DONTNEED)` over all of `file`: drop its clean pages from the page cache (dirty
/// ones are left alone). Only a hint; the data stays on disk and is read back on demand.
pub(crate) fn drop_cached(file: &File) -> io::Result<()> {
    fadvise(file, libc::POSIX_FADV_DONTNEED)
}

/// `posix_fadvise(advice)` over all of `file`.
fn fadvise(file: &File, advice: libc::c_int) -> io::Result<()> {
    // SAFETY: `posix_fadvise` takes a file descriptor and integers; the descriptor is owned by
    // `file`, which outlives the call. No memory is passed to the kernel.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, advice) };
    // It returns the error number instead of setting errno.
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// How many of `file`'s pages are in the page cache (`mincore` over a read-only mapping). Tests.
#[cfg(test)]
pub(crate) fn cached_pages(file: &File) -> io::Result<usize> {
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    if len == 0 {
        return Ok(0);
    }
    let map = memmap2::MmapOptions::new()
        .len(len)
        .map_raw_read_only(file)?;
    let mut vec = vec![0u8; len.div_ceil(page_size())];
    // SAFETY: the mapping covers `len` bytes from `map.as_ptr()` and lives until the end of this
    // function; `vec` has one byte per page of it, as mincore requires.
    let rc = unsafe { libc::mincore(map.as_mut_ptr().cast(), len, vec.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(vec.iter().filter(|&&b| b & 1 != 0).count())
}

/// The system page size (for rounding `msync` ranges).
pub(crate) fn page_size() -> usize {
    // SAFETY: `sysconf` reads a constant of the running system; no pointers involved.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// A whole file mapped shared, read-write.
pub(crate) struct MappedFile {
    map: MmapRaw,
}

impl MappedFile {
    /// Map all of `file` (its current length).
    pub(crate) fn map(file: &File) -> io::Result<Self> {
        let map = MmapRaw::map_raw(file)?;
        Ok(MappedFile { map })
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    fn check(&self, off: u64, len: usize) -> io::Result<usize> {
        let off = usize::try_from(off).map_err(|_| out_of_range())?;
        match off.checked_add(len) {
            Some(end) if end <= self.map.len() => Ok(off),
            _ => Err(out_of_range()),
        }
    }

    /// Copy `buf.len()` bytes at `off` out of the mapping.
    pub(crate) fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let off = self.check(off, buf.len())?;
        // SAFETY: `check` proved `off + buf.len() <= len`, so the source range lies inside the
        // live mapping (kept alive by `self.map`). `buf` is a distinct Rust allocation, so the
        // ranges do not overlap. The log's protocol (module docs) guarantees no thread writes
        // these bytes concurrently.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(off), buf.as_mut_ptr(), buf.len());
        }
        Ok(())
    }

    /// Copy `data` into the mapping at `off`.
    pub(crate) fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()> {
        let off = self.check(off, data.len())?;
        // SAFETY: bounds proved by `check`; the mapping is shared and writable (`map_raw` maps
        // read-write) and alive for the borrow of `self`. `data` cannot alias the mapping: it
        // is a Rust slice and we never hand out references into the mapping. Concurrent
        // accesses to the same bytes are excluded by the log's protocol (module docs).
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.map.as_mut_ptr().add(off),
                data.len(),
            );
        }
        Ok(())
    }

    /// `msync(MS_SYNC)` of the pages covering `[off, off + len)`.
    pub(crate) fn sync(&self, off: u64, len: usize) -> io::Result<()> {
        let off = self.check(off, len)?;
        let page = page_size();
        let start = off - off % page;
        let end = (off + len).min(self.map.len());
        if end <= start {
            return Ok(());
        }
        self.map.flush_range(start, end - start)
    }
}

fn out_of_range() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "access outside the mapped segment",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fill_fallback_extends_with_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("f"))
            .unwrap();
        f.write_all_at(b"abc", 0).unwrap();
        zero_fill(&f, 3 << 20).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 3 << 20);
        let mut b = [1u8; 8];
        f.read_exact_at(&mut b, (3 << 20) - 8).unwrap();
        assert_eq!(b, [0; 8]);
        preallocate(&f, 4 << 20).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 4 << 20);
    }

    #[test]
    fn mapping_bounds_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("m"))
            .unwrap();
        preallocate(&f, 8192).unwrap();
        let m = MappedFile::map(&f).unwrap();
        m.write_at(8190, b"xy").unwrap();
        assert!(m.write_at(8191, b"xy").is_err());
        assert!(m.write_at(u64::MAX, b"x").is_err());
        let mut b = [0u8; 2];
        m.read_at(8190, &mut b).unwrap();
        assert_eq!(&b, b"xy");
        assert!(m.read_at(8192, &mut b).is_err());
        m.sync(8190, 2).unwrap();
        assert!(m.sync(0, 9000).is_err());
    }
}
