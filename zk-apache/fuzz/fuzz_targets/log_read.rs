//! Feeds arbitrary bytes to zk-apache's log reader as a whole `log.<hex>` file, and every
//! entry it yields (and the input itself) to the entry decoder: errors or entries, never a
//! panic, and never an entry whose payload does not sum to its checksum. A decoded txn with a
//! digest must decode the same without it (its first `record_len` bytes).

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zk_apache::{LogReader, decode_txn};

fuzz_target!(|data: &[u8]| {
    let _ = decode_txn(Bytes::copy_from_slice(data));
    let Ok(mut r) = LogReader::new("log.1".as_ref(), std::io::Cursor::new(data)) else {
        return;
    };
    while let Ok(Some(e)) = r.next_entry() {
        let at = usize::try_from(e.offset).unwrap();
        let sum = u64::from_be_bytes(data[at..at + 8].try_into().unwrap());
        assert_eq!(sum, u64::from(zk_apache::adler32(&e.payload)));
        if let Ok(t) = decode_txn(e.payload.clone()) {
            if t.digest.is_some() {
                let plain = decode_txn(e.payload.slice(..t.record_len));
                if t.digest
                    .is_some_and(|d| d.version == zk_tree::DIGEST_VERSION)
                {
                    let plain = plain.expect("the record without its digest decodes");
                    assert_eq!((plain.header, plain.body), (t.header, t.body));
                }
            }
        }
    }
});
