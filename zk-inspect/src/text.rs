//! Text helpers: dates as Java prints them, jute's CSV rendering (`Record.toString`), JSON.

use std::fmt::Write as _;

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    weekday: usize,
    hour: i64,
    min: i64,
    sec: i64,
}

fn split_ms(ms: i64) -> Civil {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    Civil {
        year,
        month,
        day,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as usize,
        hour: rest / 3600,
        min: rest % 3600 / 60,
        sec: rest % 60,
    }
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `java.util.Date.toString()` in UTC: `Thu Jan 01 00:00:00 UTC 1970` (zkSnapShotToolkit).
pub fn java_date(ms: i64) -> String {
    let c = split_ms(ms);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[c.weekday],
        MONTHS[(c.month as usize).saturating_sub(1).min(11)],
        c.day,
        c.hour,
        c.min,
        c.sec,
        c.year
    )
}

/// `DateFormat.getDateTimeInstance(SHORT, LONG)` (en_US) in UTC: `7/20/18, 1:27:41 PM UTC`
/// (zkTxnLogToolkit).
pub fn short_date(ms: i64) -> String {
    let c = split_ms(ms);
    let (h12, ampm) = match c.hour {
        0 => (12, "AM"),
        1..=11 => (c.hour, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{}/{}/{:02}, {}:{:02}:{:02} {} UTC",
        c.month,
        c.day,
        c.year.rem_euclid(100),
        h12,
        c.min,
        c.sec,
        ampm
    )
}

/// ISO 8601 in UTC with milliseconds, for JSON.
pub fn iso_date(ms: i64) -> String {
    let c = split_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.min,
        c.sec,
        ms.rem_euclid(1000)
    )
}

/// `0x` and lowercase hex, no padding (`Long.toHexString`).
pub fn hex(v: i64) -> String {
    format!("0x{:x}", v as u64)
}

/// Java's `String.format("%#016x", v)`: `0x` then at least 14 digits.
pub fn hex016(v: i64) -> String {
    format!("{:#016x}", v as u64)
}

/// Jute `CsvOutputArchive` string: `'` then the text with `\0 \n \r , } %` percent-escaped.
pub fn csv_str(out: &mut String, s: &str) {
    out.push('\'');
    for ch in s.chars() {
        match ch {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
}

/// Jute CSV buffer: `#` and two hex digits a byte; empty (or null) is nothing.
pub fn csv_buf(out: &mut String, b: Option<&[u8]>) {
    if let Some(b) = b.filter(|b| !b.is_empty()) {
        out.push('#');
        for x in b {
            let _ = write!(out, "{x:02x}");
        }
    }
}

/// Lowercase hex of bytes.
pub fn hex_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Builds one JSON object, field by field.
#[derive(Debug)]
pub struct Obj {
    s: String,
    first: bool,
}

impl Obj {
    pub fn new() -> Obj {
        Obj {
            s: String::from("{"),
            first: true,
        }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.s.push(',');
        }
        self.first = false;
        self.s.push_str(&json_str(k));
        self.s.push(':');
    }

    /// A string field.
    pub fn str(mut self, k: &str, v: &str) -> Obj {
        self.key(k);
        self.s.push_str(&json_str(v));
        self
    }

    /// A string field, or `null`.
    pub fn opt_str(self, k: &str, v: Option<&str>) -> Obj {
        match v {
            Some(v) => self.str(k, v),
            None => self.raw(k, "null"),
        }
    }

    /// A number (or any other literal that `Display` renders as valid JSON).
    pub fn num(mut self, k: &str, v: impl std::fmt::Display) -> Obj {
        self.key(k);
        let _ = write!(self.s, "{v}");
        self
    }

    /// A boolean.
    pub fn bool(self, k: &str, v: bool) -> Obj {
        self.raw(k, if v { "true" } else { "false" })
    }

    /// Pre-rendered JSON.
    pub fn raw(mut self, k: &str, v: &str) -> Obj {
        self.key(k);
        self.s.push_str(v);
        self
    }

    /// The object's text.
    pub fn end(mut self) -> String {
        self.s.push('}');
        self.s
    }
}

/// A JSON array of pre-rendered values.
pub fn json_array<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut s = String::from("[");
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&it);
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // 2018-07-20 13:27:41 UTC
        assert_eq!(short_date(1_532_093_261_000), "7/20/18, 1:27:41 PM UTC");
        assert_eq!(java_date(1_532_093_261_000), "Fri Jul 20 13:27:41 UTC 2018");
        assert_eq!(iso_date(1_532_093_261_042), "2018-07-20T13:27:41.042Z");
        assert_eq!(short_date(-1), "12/31/69, 11:59:59 PM UTC");
        // Extreme values never panic.
        let _ = java_date(i64::MIN);
        let _ = java_date(i64::MAX);
        let _ = short_date(i64::MIN);
        let _ = iso_date(i64::MAX);
    }

    #[test]
    fn hex_formats() {
        assert_eq!(hex016(0), "0x00000000000000");
        assert_eq!(hex016(0x1_0000_0005), "0x00000100000005");
        assert_eq!(hex016(-1), "0xffffffffffffffff");
        assert_eq!(hex(0x1_0000_0005), "0x100000005");
    }

    #[test]
    fn csv_and_json_escaping() {
        let mut s = String::new();
        csv_str(&mut s, "/a,b}%\n");
        csv_buf(&mut s, Some(b"bbb"));
        csv_buf(&mut s, Some(b""));
        assert_eq!(s, "'/a%2Cb%7D%25%0A#626262");
        assert_eq!(json_str("a\"\\\n\u{1}é"), "\"a\\\"\\\\\\n\\u0001é\"");
        let o = Obj::new().str("k", "v").num("n", 3).bool("b", true).end();
        assert_eq!(o, r#"{"k":"v","n":3,"b":true}"#);
    }
}
