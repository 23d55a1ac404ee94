//! Length-prefixed frames on any blocking stream, and the four-letter words.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_jute::{DEFAULT_MAX_PACKET, ReplyHeader, encode_frame};

/// Reads one whole frame (without its 4-byte length prefix). A length outside
/// `0..=jute.maxbuffer` is an [`io::ErrorKind::InvalidData`] error, never an
/// allocation of what a bad prefix claims. Reads exactly the frame: nothing
/// after it is consumed.
pub fn read_frame<R: Read + ?Sized>(r: &mut R) -> io::Result<Bytes> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= DEFAULT_MAX_PACKET)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("frame length {n}")))?;
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf)?;
    Ok(Bytes::from(buf))
}

/// Writes one frame: `body` appends the bytes, the length prefix is added.
pub fn write_frame<W: Write + ?Sized>(
    w: &mut W,
    body: impl FnOnce(&mut BytesMut),
) -> io::Result<()> {
    let mut out = BytesMut::new();
    encode_frame(&mut out, body);
    w.write_all(&out)
}

/// The reply header at the start of a reply frame (xid, zxid, err), read
/// without decoding the body; `None` if the frame is shorter than a header.
#[inline]
pub fn reply_header(frame: &[u8]) -> Option<ReplyHeader> {
    let xid = i32::from_be_bytes(frame.get(0..4)?.try_into().ok()?);
    let zxid = i64::from_be_bytes(frame.get(4..12)?.try_into().ok()?);
    let err = i32::from_be_bytes(frame.get(12..16)?.try_into().ok()?);
    Some(ReplyHeader { xid, zxid, err })
}

/// Sends a four-letter word (`ruok`, `mntr`, `cons`, ...) on a new
/// connection and reads the answer until the server closes it; `timeout`
/// bounds the connect and each read.
pub fn four_letter(addr: SocketAddr, cmd: &str, timeout: Duration) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_jute::Jute;

    #[test]
    fn frames_round_trip_and_bad_lengths_fail() {
        let mut buf = Vec::new();
        write_frame(&mut buf, |o| o.extend_from_slice(b"abc")).unwrap();
        write_frame(&mut buf, |_| {}).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap(), Bytes::from_static(b"abc"));
        assert_eq!(read_frame(&mut r).unwrap(), Bytes::new());
        assert!(r.is_empty());
        for bad in [-1i32, 0x10_0000] {
            let e = read_frame(&mut &bad.to_be_bytes()[..]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn reply_header_parses() {
        let h = ReplyHeader {
            xid: 5,
            zxid: 0x1_0000_0002,
            err: -101,
        };
        assert_eq!(reply_header(&h.to_bytes()), Some(h));
        assert_eq!(reply_header(&[0; 15]), None);
    }
}
