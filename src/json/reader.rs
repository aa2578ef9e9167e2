//! A streaming JSON reader that accepts what Python's `json.load` accepts (including `NaN`,
//! `Infinity`, `-Infinity`), driven by the caller: `begin_object` / `next_key`,
//! `begin_array` / `next_element`, then typed reads. Memory stays bounded by the largest
//! string (capped), whatever the file size; nesting depth is capped; every error carries the
//! file name, line and column.

use std::io::Read;

use super::value::{Map, Value};

/// Default caps (generous for real files, small enough to stop hostile ones).
pub const DEFAULT_MAX_DEPTH: usize = 64;
pub const DEFAULT_MAX_STRING: usize = 1 << 20;

const BUF_SIZE: usize = 1 << 16;

/// A JSON error at a position of a file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {kind}")]
pub struct JsonError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub kind: ErrorKind,
}

/// What went wrong (callers tell the limits apart from malformed text by this).
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("read error: {0}")]
    Read(std::io::Error),
    #[error("more than {limit} numbers (limit)")]
    TooManyNumbers { limit: usize },
    #[error("string longer than {limit} bytes (limit)")]
    StringTooLong { limit: usize },
    #[error("nesting deeper than {limit} levels (limit; the file is not of the expected form)")]
    TooDeep { limit: usize },
    #[error("ragged nested list: {0}")]
    Ragged(String),
    #[error("expected {expected}, found {found}")]
    Unexpected { expected: String, found: String },
    /// Malformed text (the message says what and where).
    #[error("{0}")]
    Syntax(String),
}

pub type Result<T> = std::result::Result<T, JsonError>;

/// What the next value is, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Object => "an object",
            Kind::Array => "a list",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }
}

/// A JSON number: its value as f64, and as i64 when it was written as an integer that fits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number {
    pub value: f64,
    pub int: Option<i64>,
    /// Written without fraction or exponent (a Python int), even if it does not fit i64.
    pub integral: bool,
}

struct Frame {
    object: bool,
    first: bool,
}

pub struct JsonReader<R: Read> {
    src: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Absolute offset of buf[0].
    base: u64,
    line: u64,
    line_start: u64,
    stack: Vec<Frame>,
    pub max_depth: usize,
    pub max_string: usize,
    source: String,
    scratch: Vec<u8>,
}

impl<R: Read> JsonReader<R> {
    pub fn new(src: R, source: impl Into<String>) -> Self {
        JsonReader {
            src,
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            base: 0,
            line: 1,
            line_start: 0,
            stack: Vec::new(),
            max_depth: DEFAULT_MAX_DEPTH,
            max_string: DEFAULT_MAX_STRING,
            source: source.into(),
            scratch: Vec::new(),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Bytes consumed so far (for progress).
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// An error at the current position.
    pub fn error_at(&self, kind: ErrorKind) -> JsonError {
        let offset = self.offset();
        JsonError {
            file: self.source.clone(),
            line: self.line,
            column: offset.saturating_sub(self.line_start) + 1,
            kind,
        }
    }

    /// Malformed text at the current position.
    pub fn error(&self, message: impl Into<String>) -> JsonError {
        self.error_at(ErrorKind::Syntax(message.into()))
    }

    fn fill(&mut self) -> Result<bool> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.base += self.end as u64;
        self.pos = 0;
        self.end = 0;
        loop {
            match self.src.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.error_at(ErrorKind::Read(e))),
            }
        }
    }

    #[inline]
    fn peek(&mut self) -> Result<Option<u8>> {
        if self.pos < self.end || self.fill()? {
            Ok(Some(self.buf[self.pos]))
        } else {
            Ok(None)
        }
    }

    fn describe(&mut self) -> String {
        match self.peek() {
            Ok(Some(b)) if b.is_ascii_graphic() => format!("'{}'", b as char),
            Ok(Some(b)) => format!("byte 0x{b:02x}"),
            Ok(None) => "end of file".to_string(),
            Err(e) => e.kind.to_string(),
        }
    }

    fn unexpected(&mut self, expected: &str) -> JsonError {
        let found = self.describe();
        self.error_at(ErrorKind::Unexpected { expected: expected.to_string(), found })
    }

    #[inline]
    fn skip_ws(&mut self) -> Result<()> {
        loop {
            while self.pos < self.end {
                match self.buf[self.pos] {
                    b' ' | b'\t' | b'\r' => self.pos += 1,
                    b'\n' => {
                        self.pos += 1;
                        self.line += 1;
                        self.line_start = self.base + self.pos as u64;
                    }
                    _ => return Ok(()),
                }
            }
            if !self.fill()? {
                return Ok(());
            }
        }
    }

    fn expect_byte(&mut self, byte: u8, what: &str) -> Result<()> {
        self.skip_ws()?;
        if self.peek()? == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// Skips a UTF-8 byte order mark at the very start, if present.
    fn skip_bom(&mut self) -> Result<()> {
        if self.base == 0 && self.pos == 0 && self.fill()? && self.buf[..self.end].starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.pos = 3;
        }
        Ok(())
    }

    /// The kind of the next value (skipping whitespace). Errors on a byte no value starts with.
    pub fn peek_kind(&mut self) -> Result<Kind> {
        self.skip_bom()?;
        self.skip_ws()?;
        match self.peek()? {
            Some(b'{') => Ok(Kind::Object),
            Some(b'[') => Ok(Kind::Array),
            Some(b'"') => Ok(Kind::String),
            Some(b'-' | b'0'..=b'9' | b'N' | b'I') => Ok(Kind::Number),
            Some(b't' | b'f') => Ok(Kind::Bool),
            Some(b'n') => Ok(Kind::Null),
            _ => Err(self.unexpected("a JSON value")),
        }
    }

    fn push_frame(&mut self, object: bool) -> Result<()> {
        if self.stack.len() >= self.max_depth {
            return Err(self.error_at(ErrorKind::TooDeep { limit: self.max_depth }));
        }
        self.stack.push(Frame { object, first: true });
        Ok(())
    }

    pub fn begin_object(&mut self) -> Result<()> {
        if self.peek_kind()? != Kind::Object {
            return Err(self.unexpected("an object '{'"));
        }
        self.pos += 1;
        self.push_frame(true)
    }

    pub fn begin_array(&mut self) -> Result<()> {
        if self.peek_kind()? != Kind::Array {
            return Err(self.unexpected("a list '['"));
        }
        self.pos += 1;
        self.push_frame(false)
    }

    /// The next key of the current object, or None at its end (the object is then closed).
    pub fn next_key(&mut self) -> Result<Option<String>> {
        self.skip_ws()?;
        let first = match self.stack.last() {
            Some(Frame { object: true, first }) => *first,
            _ => return Err(self.error("internal: next_key outside an object")),
        };
        match self.peek()? {
            Some(b'}') => {
                self.pos += 1;
                self.stack.pop();
                return Ok(None);
            }
            Some(b',') if !first => {
                self.pos += 1;
                self.skip_ws()?;
            }
            _ if first => {}
            _ => return Err(self.unexpected("',' or '}'")),
        }
        if self.peek()? != Some(b'"') {
            return Err(self.unexpected("a string key"));
        }
        let key = self.read_string()?;
        self.expect_byte(b':', "':' after a key")?;
        if let Some(top) = self.stack.last_mut() {
            top.first = false;
        }
        Ok(Some(key))
    }

    /// True when another element of the current list follows; false at its end (closed).
    #[inline]
    pub fn next_element(&mut self) -> Result<bool> {
        self.skip_ws()?;
        let first = match self.stack.last() {
            Some(Frame { object: false, first }) => *first,
            _ => return Err(self.error("internal: next_element outside a list")),
        };
        match self.peek()? {
            Some(b']') => {
                self.pos += 1;
                self.stack.pop();
                Ok(false)
            }
            Some(b',') if !first => {
                self.pos += 1;
                Ok(true)
            }
            _ if first => {
                if let Some(top) = self.stack.last_mut() {
                    top.first = false;
                }
                Ok(true)
            }
            _ => Err(self.unexpected("',' or ']'")),
        }
    }

    /// Only whitespace may follow the top-level value.
    pub fn expect_end(&mut self) -> Result<()> {
        self.skip_ws()?;
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(self.unexpected("end of file after the top-level value")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<bool> {
        for &expected in word {
            match self.peek()? {
                Some(b) if b == expected => self.pos += 1,
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    pub fn read_bool(&mut self) -> Result<bool> {
        self.skip_ws()?;
        match self.peek()? {
            Some(b't') if self.literal(b"true")? => Ok(true),
            Some(b'f') if self.literal(b"false")? => Ok(false),
            _ => Err(self.unexpected("true or false")),
        }
    }

    pub fn read_null(&mut self) -> Result<()> {
        self.skip_ws()?;
        if self.peek()? == Some(b'n') && self.literal(b"null")? {
            Ok(())
        } else {
            Err(self.unexpected("null"))
        }
    }

    /// A number (Python's grammar: JSON numbers plus NaN, Infinity, -Infinity).
    #[inline]
    pub fn read_number(&mut self) -> Result<Number> {
        self.skip_ws()?;
        // Fast path: the whole number is inside the buffer.
        let start = self.pos;
        let mut i = start;
        let buf = &self.buf[..self.end];
        while i < buf.len() && matches!(buf[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
            i += 1;
        }
        if i < buf.len() && i > start && !buf[i].is_ascii_alphabetic() {
            let num = parse_number(&buf[start..i]);
            return match num {
                Some(n) => {
                    self.pos = i;
                    Ok(n)
                }
                None => {
                    let text = String::from_utf8_lossy(&buf[start..i]).into_owned();
                    Err(self.error(format!("expected a number, found '{text}'")))
                }
            };
        }
        // Slow path: across a buffer boundary, at end of file, or NaN/Infinity.
        self.scratch.clear();
        loop {
            match self.peek()? {
                Some(b @ (b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')) => {
                    self.scratch.push(b);
                    self.pos += 1;
                    if self.scratch.len() > 4096 {
                        return Err(self.error("number longer than 4096 characters"));
                    }
                }
                Some(b'N') if self.scratch.is_empty() => {
                    return if self.literal(b"NaN")? {
                        Ok(Number { value: f64::NAN, int: None, integral: false })
                    } else {
                        Err(self.unexpected("a number"))
                    };
                }
                Some(b'I') if self.scratch.is_empty() || self.scratch == b"-" => {
                    let negative = !self.scratch.is_empty();
                    return if self.literal(b"Infinity")? {
                        let value = if negative { f64::NEG_INFINITY } else { f64::INFINITY };
                        Ok(Number { value, int: None, integral: false })
                    } else {
                        Err(self.unexpected("a number"))
                    };
                }
                _ => break,
            }
        }
        if self.scratch.is_empty() {
            return Err(self.unexpected("a number"));
        }
        match parse_number(&self.scratch) {
            Some(n) => Ok(n),
            None => {
                let text = String::from_utf8_lossy(&self.scratch).into_owned();
                Err(self.error(format!("expected a number, found '{text}'")))
            }
        }
    }

    /// A number as f64; anything else is an error that names what was found.
    #[inline]
    pub fn read_f64(&mut self) -> Result<f64> {
        self.skip_ws()?;
        match self.peek()? {
            Some(b'-' | b'0'..=b'9' | b'N' | b'I') => Ok(self.read_number()?.value),
            _ => {
                let kind = self.peek_kind().map(Kind::name).unwrap_or("something else");
                Err(self.error(format!("expected a number, found {kind}")))
            }
        }
    }

    /// A string literal (with escapes decoded); must be valid UTF-8 and at most `max_string`.
    pub fn read_string(&mut self) -> Result<String> {
        self.skip_ws()?;
        if self.peek()? != Some(b'"') {
            return Err(self.unexpected("a string"));
        }
        self.pos += 1;
        self.scratch.clear();
        loop {
            // Copy the plain run up to the next quote, backslash or control byte.
            let chunk_start = self.pos;
            while self.pos < self.end {
                let b = self.buf[self.pos];
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            self.scratch.extend_from_slice(&self.buf[chunk_start..self.pos]);
            if self.scratch.len() > self.max_string {
                return Err(self.error_at(ErrorKind::StringTooLong { limit: self.max_string }));
            }
            match self.peek()? {
                None => return Err(self.error("unterminated string (end of file)")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.read_escape()?;
                }
                Some(b) if b < 0x20 => {
                    return Err(self.error(format!("control character 0x{b:02x} inside a string")));
                }
                Some(_) => {}
            }
        }
        let bytes = std::mem::take(&mut self.scratch);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(e) => {
                self.scratch = e.into_bytes();
                Err(self.error("string is not valid UTF-8"))
            }
        }
    }

    fn read_hex4(&mut self) -> Result<u16> {
        let mut v: u16 = 0;
        for _ in 0..4 {
            let d = match self.peek()? {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.unexpected("four hex digits after \\u")),
            };
            self.pos += 1;
            v = v * 16 + u16::from(d);
        }
        Ok(v)
    }

    fn read_escape(&mut self) -> Result<()> {
        let b = match self.peek()? {
            Some(b) => b,
            None => return Err(self.error("unterminated escape (end of file)")),
        };
        self.pos += 1;
        let simple = match b {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            other => {
                return Err(self.error(format!("invalid escape '\\{}' in a string", other as char)));
            }
        };
        if let Some(c) = simple {
            self.scratch.push(c);
            return Ok(());
        }
        let unit = self.read_hex4()?;
        let ch = if (0xD800..0xDC00).contains(&unit) {
            // A high surrogate must be followed by an escaped low surrogate.
            if !(self.literal(b"\\u")?) {
                return Err(self.error("lone surrogate in a \\u escape"));
            }
            let low = self.read_hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error("lone surrogate in a \\u escape"));
            }
            let code = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
            char::from_u32(code)
        } else if (0xDC00..0xE000).contains(&unit) {
            None
        } else {
            char::from_u32(u32::from(unit))
        };
        match ch {
            Some(c) => {
                let mut tmp = [0u8; 4];
                self.scratch.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                Ok(())
            }
            None => Err(self.error("lone surrogate in a \\u escape")),
        }
    }

    /// Skips one value of any kind, without recursion (bounded by `max_depth`).
    pub fn skip_value(&mut self) -> Result<()> {
        let depth = self.stack.len();
        loop {
            match self.peek_kind()? {
                Kind::Object => {
                    self.begin_object()?;
                }
                Kind::Array => {
                    self.begin_array()?;
                }
                Kind::String => {
                    self.read_string()?;
                }
                Kind::Number => {
                    self.read_number()?;
                }
                Kind::Bool => {
                    self.read_bool()?;
                }
                Kind::Null => self.read_null()?,
            }
            // Close finished containers, then move to the next value.
            loop {
                if self.stack.len() == depth {
                    return Ok(());
                }
                let more = if self.stack.last().map(|f| f.object).unwrap_or(false) {
                    self.next_key()?.is_some()
                } else {
                    self.next_element()?
                };
                if more {
                    break;
                }
            }
        }
    }

    /// A whole value as a tree (for small files: settings, candidate lists).
    pub fn read_value(&mut self) -> Result<Value> {
        match self.peek_kind()? {
            Kind::Object => {
                self.begin_object()?;
                let mut map = Map::new();
                while let Some(key) = self.next_key()? {
                    let value = self.read_value()?;
                    map.insert(key, value);
                }
                Ok(Value::Object(map))
            }
            Kind::Array => {
                self.begin_array()?;
                let mut items = Vec::new();
                while self.next_element()? {
                    items.push(self.read_value()?);
                }
                Ok(Value::Array(items))
            }
            Kind::String => Ok(Value::String(self.read_string()?)),
            Kind::Number => {
                let n = self.read_number()?;
                Ok(match n.int {
                    Some(i) => Value::Int(i),
                    None => Value::Float(n.value),
                })
            }
            Kind::Bool => Ok(Value::Bool(self.read_bool()?)),
            Kind::Null => {
                self.read_null()?;
                Ok(Value::Null)
            }
        }
    }

    /// The hot loop of number lists: consumes "number, number, ..." straight from the buffer
    /// while at least 64 bytes are buffered (so no token can be cut), committing the position
    /// after each whole element. Returns true when it consumed the closing ']' (frame popped).
    /// Anything unusual (NaN, a nested list, an error, the buffer's end) is left to the general
    /// path, which then reports errors with the right position.
    #[inline]
    fn fast_numbers(
        &mut self,
        push: &mut impl FnMut(f64),
        count: &mut usize,
        max_elems: usize,
        n: &mut usize,
    ) -> Result<bool> {
        let mut first = match self.stack.last() {
            Some(Frame { object: false, first }) => *first,
            _ => return Ok(false),
        };
        if self.end - self.pos < 64 {
            return Ok(false);
        }
        // State lives in locals and is committed after each whole number, so a number cut by
        // the buffer's end (or anything unusual) is left to the general path, untouched.
        let stop = self.end - 64;
        let buf = &self.buf[..self.end];
        let base = self.base;
        let budget = max_elems.saturating_sub(*count);
        let (mut pos, mut line, mut line_start) = (self.pos, self.line, self.line_start);
        let mut read = 0usize;
        let mut closed = false;
        let mut over = false;
        #[inline(always)]
        fn skip_ws(buf: &[u8], i: &mut usize, line: &mut u64, line_start: &mut u64, base: u64) {
            while let Some(&c) = buf.get(*i) {
                match c {
                    b' ' | b'\t' | b'\r' => {}
                    b'\n' => {
                        *line += 1;
                        *line_start = base + *i as u64 + 1;
                    }
                    _ => break,
                }
                *i += 1;
            }
        }
        while pos <= stop {
            // Hot path: `, ` (json.dump's separator) then an integer of up to three digits
            // (pixels, one-hot flags), ended by `,` or `]`. Anything else takes the general path
            // below. `pos <= stop` leaves 64 bytes to look at.
            if !first && buf[pos] == b',' && buf[pos + 1] == b' ' {
                let c = buf[pos + 2];
                if c.is_ascii_digit() {
                    let mut v = u32::from(c - b'0');
                    let mut j = pos + 3;
                    if c != b'0' && buf[j].is_ascii_digit() {
                        v = v * 10 + u32::from(buf[j] - b'0');
                        j += 1;
                        if buf[j].is_ascii_digit() {
                            v = v * 10 + u32::from(buf[j] - b'0');
                            j += 1;
                        }
                    }
                    if matches!(buf[j], b',' | b']') {
                        if read == budget {
                            over = true;
                            break;
                        }
                        push(f64::from(v));
                        read += 1;
                        pos = j;
                        continue;
                    }
                }
            }
            let (mut i, mut l, mut ls) = (pos, line, line_start);
            skip_ws(buf, &mut i, &mut l, &mut ls, base);
            match buf.get(i) {
                None => break,
                Some(b']') => {
                    (pos, line, line_start) = (i + 1, l, ls);
                    closed = true;
                    break;
                }
                Some(b',') if !first => {
                    i += 1;
                    skip_ws(buf, &mut i, &mut l, &mut ls, base);
                }
                Some(_) if !first => break,
                Some(_) => {}
            }
            let start = i;
            // One pass over plain integers (pixel values, indices: the bulk of big files);
            // anything else goes through the general number parser.
            let mut int: i64 = 0;
            while let Some(&c) = buf.get(i) {
                if !c.is_ascii_digit() || i - start >= 15 {
                    break;
                }
                int = int * 10 + i64::from(c - b'0');
                i += 1;
            }
            let plain = i > start
                && buf.get(i).is_some_and(|&c| {
                    !matches!(c, b'0'..=b'9' | b'.' | b'e' | b'E' | b'-' | b'+') && !c.is_ascii_alphabetic()
                })
                && (i - start == 1 || buf[start] != b'0');
            let value = if plain {
                int as f64
            } else {
                i = start;
                while i < buf.len() && matches!(buf[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    i += 1;
                }
                if i == start || i >= buf.len() || buf[i].is_ascii_alphabetic() {
                    break;
                }
                match parse_number(&buf[start..i]) {
                    Some(num) => num.value,
                    None => break,
                }
            };
            if read == budget {
                over = true;
                break;
            }
            push(value);
            read += 1;
            (pos, line, line_start) = (i, l, ls);
            first = false;
        }
        (self.pos, self.line, self.line_start) = (pos, line, line_start);
        *count += read;
        *n += read;
        if read > 0 {
            if let Some(top) = self.stack.last_mut() {
                top.first = false;
            }
        }
        if over {
            *count += 1;
            return Err(self.error_at(ErrorKind::TooManyNumbers { limit: max_elems }));
        }
        if closed {
            self.stack.pop();
        }
        Ok(closed)
    }

    /// A rectangular nested list of numbers (or a single number), appended to `out` in
    /// row-major order; returns its shape. Ragged lists, non-numbers and more than
    /// `max_elems` numbers are errors.
    pub fn read_nested_numbers(&mut self, max_elems: usize, mut push: impl FnMut(f64)) -> Result<Vec<usize>> {
        let mut shape: Vec<usize> = Vec::new();
        let mut count = 0usize;
        if self.peek_kind()? != Kind::Array {
            push(self.read_f64()?);
            return Ok(shape);
        }
        self.nested_level(0, &mut shape, &mut count, max_elems, &mut push)?;
        Ok(shape)
    }

    fn nested_level(
        &mut self,
        level: usize,
        shape: &mut Vec<usize>,
        count: &mut usize,
        max_elems: usize,
        push: &mut impl FnMut(f64),
    ) -> Result<()> {
        self.begin_array()?;
        let known = shape.len() > level;
        let mut n = 0usize;
        // The first list at each level fixes whether elements are lists or numbers.
        let leaf = if known {
            shape.len() == level + 1
        } else {
            // Decide from the first element (an empty list is a leaf level).
            self.skip_ws()?;
            self.peek()? != Some(b'[')
        };
        if !known {
            shape.push(0);
        }
        loop {
            if leaf && self.fast_numbers(push, count, max_elems, &mut n)? {
                break; // the list ended inside the fast path
            }
            if !self.next_element()? {
                break;
            }
            if leaf {
                if self.peek_kind()? == Kind::Array {
                    return Err(self.error_at(ErrorKind::Ragged("a list where a number was expected".into())));
                }
                push(self.read_f64()?);
                *count += 1;
                if *count > max_elems {
                    return Err(self.error_at(ErrorKind::TooManyNumbers { limit: max_elems }));
                }
            } else {
                if self.peek_kind()? != Kind::Array {
                    return Err(self.error_at(ErrorKind::Ragged("a number where a list was expected".into())));
                }
                self.nested_level(level + 1, shape, count, max_elems, push)?;
            }
            n += 1;
        }
        if known && shape[level] != n {
            return Err(self.error_at(ErrorKind::Ragged(format!(
                "{} elements where an earlier list at this depth had {}",
                n, shape[level]
            ))));
        }
        shape[level] = n;
        Ok(())
    }
}

/// Parses a JSON number's text (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
pub fn parse_number(text: &[u8]) -> Option<Number> {
    let mut i = 0;
    let negative = text.first() == Some(&b'-');
    if negative {
        i = 1;
    }
    let int_start = i;
    while i < text.len() && text[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &text[int_start..i];
    if int_digits.is_empty() || (int_digits.len() > 1 && int_digits[0] == b'0') {
        return None;
    }
    let mut frac_digits: &[u8] = &[];
    if i < text.len() && text[i] == b'.' {
        let s = i + 1;
        i = s;
        while i < text.len() && text[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = &text[s..i];
        if frac_digits.is_empty() {
            return None;
        }
    }
    let mut exp: i64 = 0;
    let mut has_exp = false;
    if i < text.len() && (text[i] == b'e' || text[i] == b'E') {
        has_exp = true;
        i += 1;
        let mut exp_neg = false;
        if i < text.len() && (text[i] == b'+' || text[i] == b'-') {
            exp_neg = text[i] == b'-';
            i += 1;
        }
        let s = i;
        while i < text.len() && text[i].is_ascii_digit() {
            if exp < 100_000 {
                exp = exp * 10 + i64::from(text[i] - b'0');
            }
            i += 1;
        }
        if i == s {
            return None;
        }
        if exp_neg {
            exp = -exp;
        }
    }
    if i != text.len() {
        return None;
    }
    let integral = frac_digits.is_empty() && !has_exp;
    // Clinger's fast path: up to 15 significant digits and a small power of ten are exact.
    let total_digits = int_digits.len() + frac_digits.len();
    if total_digits <= 15 {
        let mut m: u64 = 0;
        for &d in int_digits.iter().chain(frac_digits) {
            m = m * 10 + u64::from(d - b'0');
        }
        let e10 = exp - frac_digits.len() as i64;
        if (-22..=22).contains(&e10) {
            let mut v = m as f64;
            if e10 >= 0 {
                v *= POW10[e10 as usize];
            } else {
                v /= POW10[(-e10) as usize];
            }
            // `-0` is the Python int 0, whose float is +0.0 (`-0.0` keeps its sign).
            if negative && !(integral && m == 0) {
                v = -v;
            }
            let int = if integral {
                let m = m as i64;
                Some(if negative { -m } else { m })
            } else {
                None
            };
            return Some(Number { value: v, int, integral });
        }
    }
    // Anything else: the standard library's correctly rounded parser.
    let s = std::str::from_utf8(text).ok()?;
    let value: f64 = s.parse().ok()?;
    let int = if integral { s.parse::<i64>().ok() } else { None };
    Some(Number { value, int, integral })
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// Reads a whole small JSON file as a tree, with caps on its size.
pub fn read_value_from(src: impl Read, source: &str) -> Result<Value> {
    let mut r = JsonReader::new(src, source);
    let v = r.read_value()?;
    r.expect_end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &str) -> JsonReader<&[u8]> {
        JsonReader::new(text.as_bytes(), "t.json")
    }

    #[test]
    fn numbers_parse_like_python() {
        for (text, value) in [
            ("0", 0.0f64),
            ("-0", 0.0), // json.loads gives the int 0, whose float is +0.0
            ("-0.0", -0.0),
            ("-0e0", -0.0),
            ("1.5", 1.5),
            ("1e5", 1e5),
            ("0.10000000149011612", 0.10000000149011612),
            ("9.999999747378752e-06", 9.999999747378752e-06),
            ("123456789012345678901234", 1.2345678901234568e23),
            ("2.2250738585072014e-308", 2.2250738585072014e-308),
            ("1E+2", 100.0),
        ] {
            let n = parse_number(text.as_bytes()).unwrap();
            assert_eq!(n.value.to_bits(), value.to_bits(), "{text}");
        }
        assert_eq!(parse_number(b"42").unwrap().int, Some(42));
        assert_eq!(parse_number(b"4.0").unwrap().int, None);
        for bad in ["01", "1.", ".5", "-", "1e", "+1", "1.2.3", "--1"] {
            assert!(parse_number(bad.as_bytes()).is_none(), "{bad}");
        }
        let mut r = reader("[NaN, -Infinity, Infinity]");
        r.begin_array().unwrap();
        let mut got = vec![];
        while r.next_element().unwrap() {
            got.push(r.read_f64().unwrap());
        }
        assert!(got[0].is_nan());
        assert_eq!(got[1], f64::NEG_INFINITY);
        assert_eq!(got[2], f64::INFINITY);
    }

    #[test]
    fn objects_and_errors_have_positions() {
        let mut r = reader("{\n  \"a\": 1,\n  \"b\" 2}");
        r.begin_object().unwrap();
        assert_eq!(r.next_key().unwrap().as_deref(), Some("a"));
        r.read_number().unwrap();
        let err = r.next_key().unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().starts_with("t.json:3:7: expected ':'"), "{err}");
    }

    #[test]
    fn nested_numbers_and_ragged_lists() {
        let mut r = reader("[[1, 2, 3], [4, 5, 6]]");
        let mut v = vec![];
        assert_eq!(r.read_nested_numbers(100, |x| v.push(x)).unwrap(), vec![2, 3]);
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut r = reader("[[1, 2], [3]]");
        let err = r.read_nested_numbers(100, |_| {}).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Ragged(_)), "{err}");
        let mut r = reader("[[1, 2], 3]");
        assert!(matches!(r.read_nested_numbers(100, |_| {}).unwrap_err().kind, ErrorKind::Ragged(_)));
        let mut r = reader("[]");
        assert_eq!(r.read_nested_numbers(100, |_| {}).unwrap(), vec![0]);
        let mut r = reader("[[], []]");
        assert_eq!(r.read_nested_numbers(100, |_| {}).unwrap(), vec![2, 0]);
        let mut r = reader("[1, 2, 3]");
        assert!(r.read_nested_numbers(2, |_| {}).is_err());
    }

    #[test]
    fn strings_decode_escapes_and_reject_bad_text() {
        let mut r = reader(r#""a\"\\\/\n\u00e9\ud83d\ude00""#);
        assert_eq!(r.read_string().unwrap(), "a\"\\/\n\u{e9}\u{1F600}");
        assert!(reader("\"\\ud83d\"").read_string().is_err());
        assert!(reader("\"a\nb\"").read_string().is_err());
        let bad_utf8: &[u8] = b"\"\xff\"";
        assert!(JsonReader::new(bad_utf8, "x").read_string().is_err());
    }

    #[test]
    fn depth_is_capped_and_skip_is_iterative() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(matches!(reader(&deep).skip_value().unwrap_err().kind, ErrorKind::TooDeep { .. }));
        let mut r = reader("{\"a\": [1, {\"b\": [true, null, \"x\"]}], \"c\": 2}");
        r.skip_value().unwrap();
        r.expect_end().unwrap();
    }

    #[test]
    fn values_keep_python_dict_semantics() {
        let v = read_value_from(&b"{\"a\": 1, \"b\": 2, \"a\": 3}"[..], "t").unwrap();
        let map = v.as_object().unwrap();
        let keys: Vec<_> = map.keys().cloned().collect();
        assert_eq!(keys, vec!["a", "b"]);
        assert_eq!(map.get("a"), Some(&Value::Int(3)));
    }

    #[test]
    fn tokens_across_buffer_boundaries() {
        // Force numbers and strings to straddle the 64 KiB buffer edge.
        let mut text = String::from("[");
        let mut want = vec![];
        let mut i = 0u64;
        while text.len() < 3 * BUF_SIZE {
            let x = (i as f64) * 0.001 + 0.1234567;
            text.push_str(&format!("{x:?}, "));
            want.push(x);
            i += 1;
        }
        text.push_str("1]");
        want.push(1.0);
        let mut r = reader(&text);
        let mut got = vec![];
        r.read_nested_numbers(usize::MAX, |x| got.push(x)).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn integer_fast_paths_agree_with_the_general_parser() {
        // Integers of 1 to 6 digits, zero, negatives, floats and exponents, with `, `, `,`,
        // newlines and runs of spaces between them, across several buffer edges; every value
        // must be what parse_number gives for its text, and errors must stay errors.
        let mut text = String::from("[");
        let mut want = vec![];
        let mut i = 0u64;
        while text.len() < 3 * BUF_SIZE {
            let tok = match i % 11 {
                0 => "0".to_string(),
                1..=4 => ((i * 7919) % 256).to_string(),
                5 => ((i * 104_729) % 1_000_000).to_string(),
                6 => format!("-{}", i % 300),
                7 => format!("{}.5", i % 300),
                8 => format!("{}e2", i % 9),
                9 => "255".to_string(),
                _ => (i % 10).to_string(),
            };
            want.push(parse_number(tok.as_bytes()).unwrap().value);
            text.push_str(&tok);
            text.push_str(match i % 13 {
                0 => ",",
                1 => ",\n  ",
                2 => " ,   ",
                _ => ", ",
            });
            i += 1;
        }
        text.push_str("7]");
        want.push(7.0);
        let mut got = vec![];
        reader(&text).read_nested_numbers(usize::MAX, |x| got.push(x)).unwrap();
        assert_eq!(got, want);
        // Leading zeros, digits glued to letters and a missing separator are still errors,
        // wherever they fall; the element limit still holds.
        let head = "1, ".repeat(40);
        for bad in ["05", "00", "12a", "1 2", "255x", "1.", "+1"] {
            let text = format!("[{head}{bad}, {head}1]");
            assert!(reader(&text).read_nested_numbers(usize::MAX, |_| {}).is_err(), "{bad} accepted");
        }
        let text = format!("[{head}1]");
        let err = reader(&text).read_nested_numbers(40, |_| {}).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::TooManyNumbers { limit: 40 }), "{err}");
    }
}
