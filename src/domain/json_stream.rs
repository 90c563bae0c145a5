//! Reading an import file as a stream of records, in bounded memory.
//!
//! A file is a JSON array; its elements are handed over one at a time, each as its own raw
//! JSON text (checked to be well-formed, not yet parsed into a tree), so a 100 MB file never
//! sits in memory as one tree (which costs about nine times the file) and each record is
//! parsed once, straight into its typed form. On the way the bytes are hashed (the file's fingerprint) and checked
//! to be UTF-8: a UTF-8 byte-order mark is skipped, UTF-16 is refused, and bytes that are not
//! UTF-8 stop the read with the offset where they start and, when they look like it, the
//! likely encoding (GBK/GB18030, what Windows tools in China often write).
//!
//! Errors say what a clinic's IT person can act on: which record, which line, and what to do.
//!
//! No record may be larger than [`MAX_RECORD_BYTES`]: the reader stops one that grows past it
//! (so a 200 MB record never sits in memory), and the caller reads the file again with that
//! record's bytes in [`Skips`], where it reads as `null` and is rejected on its own while the
//! other records are imported.

use std::{
    cell::Cell,
    fmt,
    io::{self, BufRead, Read},
    rc::Rc,
};

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
pub use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Why a file could not be read as an array of records. Nothing of such a file is imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError(pub String);

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hashes every byte read through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Passes bytes through unchanged and fails at the first byte that is not UTF-8. It checks
/// each read in place; a character split between two reads is completed from the next one.
struct Utf8Check<R> {
    inner: R,
    /// An incomplete character at the end of the last read (at most 3 bytes).
    carry: Vec<u8>,
    /// Bytes passed before the current read (after any byte-order mark).
    offset: u64,
}

/// The length of the UTF-8 character that starts with `lead`, if it can start one.
fn char_width(lead: u8) -> Option<usize> {
    match lead {
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

impl<R: Read> Read for Utf8Check<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let carried = self.carry.len() as u64;
        if n == 0 {
            if !self.carry.is_empty() {
                return Err(encoding_error(self.offset - carried, &self.carry));
            }
            return Ok(0);
        }
        let mut start = 0;
        if !self.carry.is_empty() {
            let width = char_width(self.carry[0]).unwrap_or(1);
            let take = (width - self.carry.len()).min(n);
            self.carry.extend_from_slice(&buf[..take]);
            start = take;
            if self.carry.len() == width {
                if std::str::from_utf8(&self.carry).is_err() {
                    let mut bytes = self.carry.clone();
                    bytes.extend_from_slice(&buf[take..n.min(take + 64)]);
                    return Err(encoding_error(self.offset - carried, &bytes));
                }
                self.carry.clear();
            }
        }
        if self.carry.is_empty() {
            match std::str::from_utf8(&buf[start..n]) {
                Ok(_) => {}
                Err(e) if e.error_len().is_none() => {
                    self.carry = buf[start + e.valid_up_to()..n].to_vec();
                }
                Err(e) => {
                    let at = start + e.valid_up_to();
                    return Err(encoding_error(
                        self.offset + at as u64,
                        &buf[at..n.min(at + 64)],
                    ));
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Whether `bytes` read as GBK/GB18030 double-byte characters.
fn looks_like_gbk(bytes: &[u8]) -> bool {
    let mut i = 0;
    let mut pairs = 0;
    while i < bytes.len() && pairs < 8 {
        let b = bytes[i];
        if b < 0x80 {
            i += 1;
            continue;
        }
        let Some(&t) = bytes.get(i + 1) else {
            return pairs > 0;
        };
        if !((0x81..=0xFE).contains(&b) && (0x40..=0xFE).contains(&t) && t != 0x7F) {
            return false;
        }
        pairs += 1;
        i += 2;
    }
    pairs > 0
}

fn encoding_error(offset: u64, bytes: &[u8]) -> io::Error {
    let guess = if looks_like_gbk(bytes) {
        "，看起来是 GBK/GB18030 编码（国内 Windows 软件常用）。请另存为 UTF-8 编码（如记事本：另存为，编码选 UTF-8）后重新导入"
    } else {
        "。请另存为 UTF-8 编码后重新导入"
    };
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("文件不是 UTF-8 编码：第 {offset} 个字节不是 UTF-8（byte {offset}）{guess}"),
    )
}

/// The largest record an import file may hold, in bytes of its JSON text. A clinic's largest
/// real record (an order of a hundred lines, a customer with long notes) is a few kilobytes.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Byte ranges of records that are too large (in the file after any byte-order mark), in
/// order; each reads as `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skips(Vec<(u64, u64)>);

impl Skips {
    /// Adds a record's range, keeping them in file order.
    pub fn add(&mut self, range: (u64, u64)) {
        let at = self.0.partition_point(|r| r.0 < range.0);
        self.0.insert(at, range);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a read stopped: the file cannot be read as records, or one record is too large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStop {
    File(StreamError),
    /// Record `record` grew past [`MAX_RECORD_BYTES`]; its text starts at or after byte `from`.
    Oversized {
        record: usize,
        from: u64,
    },
}

/// Between the JSON reader and the file: counts the bytes handed over, hands `null` instead of
/// the records in `skips`, and stops a record that grows past `limit`.
struct Bounded<R> {
    inner: R,
    /// Bytes of the file taken from `inner` so far.
    pos: Rc<Cell<u64>>,
    /// Where the record being read began (set before each element).
    record_start: Rc<Cell<u64>>,
    limit: u64,
    skips: Vec<(u64, u64)>,
    next_skip: usize,
    /// What is left to hand over of a `null` standing for a skipped record.
    pending: &'static [u8],
    /// Set when a record grew past `limit` (the read then fails).
    too_large: Rc<Cell<bool>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let pos = self.pos.get();
        if self.pending.is_empty()
            && let Some(&(start, end)) = self.skips.get(self.next_skip)
            && pos == start
        {
            let skipped = io::copy(&mut (&mut self.inner).take(end - start), &mut io::sink())?;
            if skipped != end - start {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file changed while it was being read",
                ));
            }
            self.pos.set(end);
            self.record_start.set(end);
            self.next_skip += 1;
            self.pending = b"null";
        }
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending = &self.pending[n..];
            return Ok(n);
        }
        // Never read past the start of the next skipped record.
        let room = match self.skips.get(self.next_skip) {
            Some(&(start, _)) => ((start - pos) as usize).min(buf.len()),
            None => buf.len(),
        };
        let n = self.inner.read(&mut buf[..room])?;
        self.pos.set(pos + n as u64);
        if pos + n as u64 - self.record_start.get() > self.limit {
            self.too_large.set(true);
            return Err(io::Error::other("record too large"));
        }
        Ok(n)
    }
}

/// Where the element that starts at or after `from` ends (`[start, end)`), reading `file` from
/// `from` on: past white space and one comma, then through one JSON value, strings and nesting
/// included. Reads to the end in constant memory whatever the element's size.
pub fn element_range<R: Read>(file: R, from: u64) -> io::Result<(u64, u64)> {
    let mut bytes = io::BufReader::with_capacity(64 * 1024, file).bytes();
    let mut at = from;
    let mut next = |at: &mut u64| -> io::Result<u8> {
        let b = bytes.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ends inside a record",
            )
        })??;
        *at += 1;
        Ok(b)
    };
    let mut b = next(&mut at)?;
    let mut comma = false;
    while b.is_ascii_whitespace() || (b == b',' && !comma) {
        comma |= b == b',';
        b = next(&mut at)?;
    }
    let start = at - 1;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    loop {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                if depth == 0 {
                    return Ok((start, at));
                }
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => depth += 1,
                b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok((start, at));
                    }
                }
                b',' if depth == 0 => return Ok((start, at - 1)),
                b if depth == 0 && b.is_ascii_whitespace() => return Ok((start, at - 1)),
                _ => {}
            }
        }
        b = match next(&mut at) {
            Ok(b) => b,
            // A bare value (a number, true) at the very end.
            Err(_) if depth == 0 && !in_string => return Ok((start, at)),
            Err(e) => return Err(e),
        };
    }
}

/// Counts the elements handed over, so that an error can name the record it happened in.
struct Elements<'f, F> {
    on_record: &'f mut F,
    count: &'f mut usize,
    pos: Rc<Cell<u64>>,
    record_start: Rc<Cell<u64>>,
}

impl<'de, F: FnMut(usize, &RawValue)> Visitor<'de> for Elements<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of records, [ {...}, {...} ]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.record_start.set(self.pos.get());
            let Some(value) = seq.next_element::<Box<RawValue>>()? else {
                break;
            };
            (self.on_record)(*self.count, &value);
            *self.count += 1;
        }
        Ok(())
    }
}

impl<'de, F: FnMut(usize, &RawValue)> DeserializeSeed<'de> for Elements<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

/// What a read of the whole file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// Records (array elements) in the file.
    pub records: usize,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
}

/// Reads `reader` as a JSON array and calls `on_record(index, value)` for each element, in
/// order, holding one element at a time. A record larger than [`MAX_RECORD_BYTES`] stops the
/// read (see [`for_each_record_skipping`] to read past it).
pub fn for_each_record<R: Read>(
    reader: R,
    on_record: impl FnMut(usize, &RawValue),
) -> Result<StreamSummary, StreamError> {
    for_each_record_skipping(reader, &Skips::default(), MAX_RECORD_BYTES, on_record).map_err(
        |stop| match stop {
            ReadStop::File(e) => e,
            ReadStop::Oversized { record, .. } => oversized(record),
        },
    )
}

/// A record's error for being too large.
pub fn oversized(record: usize) -> StreamError {
    StreamError(format!(
        "第 {} 条记录超过 {} MB，已跳过：一条记录只应是一位客户、一张订单或一个项目/产品",
        record + 1,
        MAX_RECORD_BYTES >> 20
    ))
}

/// As [`for_each_record`], with the records in `skips` read as `null`; a record larger than
/// `limit` stops the read with [`ReadStop::Oversized`], so that the caller can add it to
/// `skips` (see [`element_range`]) and read again.
pub fn for_each_record_skipping<R: Read>(
    reader: R,
    skips: &Skips,
    limit: u64,
    mut on_record: impl FnMut(usize, &RawValue),
) -> Result<StreamSummary, ReadStop> {
    let mut hashing = io::BufReader::with_capacity(
        256 * 1024,
        Hashing {
            inner: reader,
            hasher: Sha256::new(),
        },
    );
    let head = hashing
        .fill_buf()
        .map_err(|e| ReadStop::File(StreamError(format!("无法读取文件：{e}"))))?;
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err(ReadStop::File(StreamError(
            "文件是 UTF-16 编码（以 UTF-16 字节序标记开头）：请另存为 UTF-8 编码后重新导入".into(),
        )));
    }
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        // A UTF-8 byte-order mark (Windows Notepad, Excel): not part of the JSON.
        hashing.consume(3);
    }
    // serde_json reads a byte at a time: give it a buffer in front of the check.
    let checked = io::BufReader::with_capacity(
        64 * 1024,
        Utf8Check {
            inner: &mut hashing,
            carry: Vec::new(),
            offset: 0,
        },
    );
    let (pos, record_start) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let too_large = Rc::new(Cell::new(false));
    let bounded = Bounded {
        inner: checked,
        pos: pos.clone(),
        record_start: record_start.clone(),
        limit,
        skips: skips.0.clone(),
        next_skip: 0,
        pending: b"",
        too_large: too_large.clone(),
    };
    let mut count = 0;
    let mut de = serde_json::Deserializer::from_reader(bounded);
    let read = Elements {
        on_record: &mut on_record,
        count: &mut count,
        pos,
        record_start: record_start.clone(),
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Err(e) = read {
        if too_large.get() {
            return Err(ReadStop::Oversized {
                record: count,
                from: record_start.get(),
            });
        }
        return Err(ReadStop::File(describe(&e, count)));
    }
    // Whatever serde left unread (nothing, for a well-formed file) still counts for the hash.
    io::copy(&mut hashing, &mut io::sink())
        .map_err(|e| ReadStop::File(StreamError(format!("无法读取文件：{e}"))))?;
    let sha256 = hashing
        .into_inner()
        .hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(StreamSummary {
        records: count,
        sha256,
    })
}

/// An error of the JSON reader in words: where, and what to do.
fn describe(e: &serde_json::Error, records_read: usize) -> StreamError {
    use serde_json::error::Category;
    let at = format!("第 {} 行第 {} 列", e.line(), e.column());
    // Counted from 1, as staff count; the record being read when the reader stopped.
    let n = records_read + 1;
    StreamError(match e.classify() {
        Category::Io => e
            .io_error_kind()
            .map(|_| strip_position(&e.to_string()))
            .unwrap_or_else(|| e.to_string()),
        Category::Eof if records_read == 0 && e.line() <= 1 && e.column() == 0 => {
            "文件是空的：导入文件应是一个 JSON 数组，没有记录时写 [ ]".into()
        }
        Category::Eof => {
            format!("文件在第 {n} 条记录中间结束（{at}）：文件不完整，请重新导出")
        }
        Category::Syntax if e.to_string().contains("recursion limit") => {
            format!("第 {n} 条记录嵌套太深（{at}）：一条记录最多含一层明细列表")
        }
        Category::Syntax => format!(
            "不是合法的 JSON：第 {n} 条记录（{at}）{}",
            syntax_in_words(&strip_position(&e.to_string()))
        ),
        Category::Data => format!(
            "文件应是一个记录数组 [ {{...}}, {{...}} ]，而不是{}",
            if e.to_string().contains("map") {
                "一个对象 { … }"
            } else {
                "其他内容"
            }
        ),
    })
}

/// serde_json's syntax errors, in Chinese where they are common; others keep its words.
fn syntax_in_words(text: &str) -> String {
    let words = match text {
        "expected value" => "此处缺少值",
        "expected `,` or `]`" => "缺少逗号或 ]",
        "expected `,` or `}`" => "缺少逗号或 }",
        "expected `:`" => "字段名后缺少冒号",
        "key must be a string" => "字段名必须用双引号括起来",
        "trailing comma" => "多余的逗号",
        "trailing characters" => "数组结束后还有多余内容",
        "invalid escape" => "字符串里有无效的转义（\\）",
        "invalid number" => "数字写法不对",
        "expected ident" => "拼写错误（true、false、null 要小写）",
        t if t.starts_with("control character") => "字符串里有未转义的控制字符（如换行）",
        t if t.starts_with("EOF while parsing") => "文件不完整",
        other => return format!("：{other}"),
    };
    format!("：{words}")
}

/// serde_json appends " at line L column C"; the caller says where in its own words.
pub(crate) fn strip_position(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<(Vec<serde_json::Value>, StreamSummary), StreamError> {
        let mut got = Vec::new();
        let summary = for_each_record(bytes, |_, v| {
            got.push(serde_json::from_str(v.get()).unwrap())
        })?;
        Ok((got, summary))
    }

    #[test]
    fn elements_come_one_by_one_with_the_file_hash() {
        let (got, s) = read(br#"[{"a":1},{"a":2}]"#).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(s.records, 2);
        assert_eq!(
            s.sha256,
            crate::domain::records::sha256_hex(br#"[{"a":1},{"a":2}]"#)
        );
    }

    #[test]
    fn a_utf8_byte_order_mark_is_skipped_and_utf16_refused() {
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice("[{\"name\":\"张三\"}]".as_bytes());
        assert_eq!(read(&bom).unwrap().0[0]["name"], "张三");
        let e = read(&[0xFF, 0xFE, b'[', 0]).unwrap_err();
        assert!(
            e.0.contains("UTF-16") && e.0.contains("另存为 UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn gbk_is_detected_and_named() {
        // "张三" in GBK: D5 C5 C8 FD.
        let mut gbk = b"[{\"name\":\"".to_vec();
        gbk.extend_from_slice(&[0xD5, 0xC5, 0xC8, 0xFD]);
        gbk.extend_from_slice(b"\"}]");
        let e = read(&gbk).unwrap_err();
        assert!(e.0.contains("不是 UTF-8") && e.0.contains("GBK"), "{e}");
        assert!(e.0.contains("第 10 个字节"), "{e}");
    }

    #[test]
    fn a_utf8_character_split_across_reads_is_fine() {
        // A reader that hands over one byte at a time.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let text = "[{\"name\":\"欧阳娜娜\"}]";
        let mut n = 0;
        for_each_record(OneByte(text.as_bytes()), |_, _| n += 1).unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn truncated_wrong_shape_trailing_and_deep_files_say_so() {
        let e = read(br#"[{"a":1},{"a":"#).unwrap_err();
        assert!(
            e.0.contains("第 2 条记录中间结束") && e.0.contains("请重新导出"),
            "{e}"
        );
        let e = read(br#"{"records":[]}"#).unwrap_err();
        assert!(
            e.0.contains("应是一个记录数组") && e.0.contains("对象"),
            "{e}"
        );
        let e = read(br#"[{"a":1}] x"#).unwrap_err();
        assert!(
            e.0.contains("不是合法的 JSON") && e.0.contains("多余内容"),
            "{e}"
        );
        let e = read(br#"[{"a":1},]"#).unwrap_err();
        assert!(e.0.contains("不是合法的 JSON"), "{e}");
        let e = read(b"").unwrap_err();
        assert!(e.0.contains("文件是空的"), "{e}");
        // Deep nesting inside a record is that record's problem (see records), not the file's.
        let deep = format!("[{}{}]", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            for_each_record(deep.as_bytes(), |_, _| {}).unwrap().records,
            1
        );
        assert_eq!(read(b"[]").unwrap().1.records, 0);
    }
}
