//! A streaming writer of Python's `json.dump(obj, f, indent=2)` text.
//!
//! Layout: every element on its own line, two spaces per level, `": "` after keys, `,` at line
//! ends, `[]`/`{}` for empty containers, no newline at the end, non-ASCII escaped as `\uXXXX`.
//! The caller drives it (`begin_object`, `key`, values, `end_object`), so files of any size
//! are written without building them in memory.

use std::io::{self, Write};

use rayon::prelude::*;

use super::pyfloat;

/// Output is collected here and handed to the inner writer in large blocks.
const FLUSH_AT: usize = 1 << 16;

pub struct PyJsonWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// For each open container: has it received an element yet?
    stack: Vec<bool>,
    /// A key was just written; the next value goes on the same line.
    after_key: bool,
    /// Non-finite floats written so far (they signal a broken model).
    pub non_finite: u64,
    /// Text buffers reused by `nested_f32` (no fresh, page-faulting allocations per group).
    pool: Vec<Vec<u8>>,
}

impl<W: Write> PyJsonWriter<W> {
    pub fn new(out: W) -> Self {
        PyJsonWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            stack: Vec::new(),
            after_key: false,
            non_finite: 0,
            pool: Vec::new(),
        }
    }

    /// A writer for a fragment that continues a document `depth` containers deep, each of
    /// which already has items (so the fragment starts with ",\n<indent>"). Used to format
    /// parts of one file on several threads; see `append_fragment`.
    pub fn fragment(out: W, depth: usize) -> Self {
        let mut w = PyJsonWriter::new(out);
        w.stack = vec![true; depth];
        w
    }

    /// Appends text made by a `fragment` writer at this writer's depth (its leading ',' is
    /// dropped when the container has no items yet).
    pub fn append_fragment(&mut self, text: &[u8], non_finite: u64) -> io::Result<()> {
        let first = match self.stack.last_mut() {
            Some(has_items) => {
                let first = !*has_items;
                *has_items = true;
                first
            }
            None => false,
        };
        let text = if first { text.strip_prefix(b",").unwrap_or(text) } else { text };
        self.non_finite += non_finite;
        if text.len() >= FLUSH_AT {
            // Large fragments go straight to the inner writer (no copy through the buffer).
            self.flush_buffer()?;
            return self.out.write_all(text);
        }
        self.buf.extend_from_slice(text);
        self.maybe_flush()
    }

    fn newline_indent(&mut self, depth: usize) {
        self.buf.push(b'\n');
        self.buf.resize(self.buf.len() + 2 * depth, b' ');
    }

    /// Separator and indentation before a value or key at the current level.
    #[inline]
    fn before_item(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if let Some(has_items) = self.stack.last_mut() {
            let first = !*has_items;
            *has_items = true;
            if !first {
                self.buf.push(b',');
            }
            let depth = self.stack.len();
            self.newline_indent(depth);
        }
    }

    #[inline]
    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub fn begin_object(&mut self) -> io::Result<()> {
        self.before_item();
        self.buf.push(b'{');
        self.stack.push(false);
        Ok(())
    }

    pub fn begin_array(&mut self) -> io::Result<()> {
        self.before_item();
        self.buf.push(b'[');
        self.stack.push(false);
        Ok(())
    }

    fn end(&mut self, close: u8) -> io::Result<()> {
        let had_items = self.stack.pop().unwrap_or(false);
        if had_items {
            let depth = self.stack.len();
            self.newline_indent(depth);
        }
        self.buf.push(close);
        self.maybe_flush()
    }

    pub fn end_object(&mut self) -> io::Result<()> {
        self.end(b'}')
    }

    pub fn end_array(&mut self) -> io::Result<()> {
        self.end(b']')
    }

    pub fn key(&mut self, key: &str) -> io::Result<()> {
        self.before_item();
        push_json_string(&mut self.buf, key);
        self.buf.extend_from_slice(b": ");
        self.after_key = true;
        Ok(())
    }

    pub fn string(&mut self, value: &str) -> io::Result<()> {
        self.before_item();
        push_json_string(&mut self.buf, value);
        self.maybe_flush()
    }

    /// `null` (Python's None).
    pub fn null(&mut self) -> io::Result<()> {
        self.before_item();
        self.buf.extend_from_slice(b"null");
        self.maybe_flush()
    }

    pub fn int(&mut self, value: i64) -> io::Result<()> {
        self.before_item();
        let mut b = itoa_buf(value);
        self.buf.append(&mut b);
        self.maybe_flush()
    }

    #[inline]
    pub fn float(&mut self, value: f64) -> io::Result<()> {
        self.before_item();
        if !value.is_finite() {
            self.non_finite += 1;
        }
        pyfloat::push_f64(&mut self.buf, value);
        self.maybe_flush()
    }

    /// Convenience: `"key": value` pairs.
    pub fn key_int(&mut self, key: &str, value: i64) -> io::Result<()> {
        self.key(key)?;
        self.int(value)
    }

    pub fn key_float(&mut self, key: &str, value: f64) -> io::Result<()> {
        self.key(key)?;
        self.float(value)
    }

    pub fn key_string(&mut self, key: &str, value: &str) -> io::Result<()> {
        self.key(key)?;
        self.string(value)
    }

    /// `"key": value`, or `null` when there is none or it is not finite.
    pub fn key_opt_float(&mut self, key: &str, value: Option<f64>) -> io::Result<()> {
        self.key(key)?;
        match value {
            Some(x) if x.is_finite() => self.float(x),
            _ => self.null(),
        }
    }

    /// `"key": [a, b]` (an interval), or `null`.
    pub fn key_opt_pair(&mut self, key: &str, value: Option<[f64; 2]>) -> io::Result<()> {
        self.key(key)?;
        match value {
            Some([a, b]) => {
                self.begin_array()?;
                self.float(a)?;
                self.float(b)?;
                self.end_array()
            }
            None => self.null(),
        }
    }

    /// A row-major array of `shape` as nested lists (a scalar when `shape` is empty).
    /// `value(i)` gives element i; every element goes through the Python float format.
    pub fn nested<F: FnMut(usize) -> f64>(&mut self, shape: &[usize], mut value: F) -> io::Result<()> {
        if shape.is_empty() {
            return self.float(value(0));
        }
        let mut index = 0usize;
        self.nested_level(shape, &mut index, &mut value)
    }

    fn nested_level<F: FnMut(usize) -> f64>(
        &mut self,
        shape: &[usize],
        index: &mut usize,
        value: &mut F,
    ) -> io::Result<()> {
        self.begin_array()?;
        if shape.len() == 1 {
            if shape[0] > 0 {
                // The innermost level: every element is ",\n<indent><number>"; build each line
                // in one stack buffer and append it with a single copy.
                let depth = self.stack.len();
                if let Some(top) = self.stack.last_mut() {
                    *top = true;
                }
                let prefix = 2 + 2 * depth;
                let mut line = vec![b' '; prefix + pyfloat::MAX_LEN];
                line[0] = b',';
                line[1] = b'\n';
                for j in 0..shape[0] {
                    let v = value(*index);
                    *index += 1;
                    if !v.is_finite() {
                        self.non_finite += 1;
                    }
                    let n = pyfloat::format_f64(&mut line[prefix..], v);
                    let from = usize::from(j == 0); // no comma before the first element
                    self.buf.extend_from_slice(&line[from..prefix + n]);
                    if self.buf.len() >= FLUSH_AT {
                        self.maybe_flush()?;
                    }
                }
            }
        } else {
            for _ in 0..shape[0] {
                self.nested_level(&shape[1..], index, value)?;
            }
        }
        self.end_array()
    }

    /// `nested` for float32 values; large arrays are formatted on all cores, a bounded number of
    /// row groups (about 4 MB of text each) at a time, and appended in order.
    pub fn nested_f32(&mut self, shape: &[usize], values: &[f32]) -> io::Result<()> {
        const PARALLEL_FROM: usize = 1 << 18;
        if shape.len() < 2 || values.len() < PARALLEL_FROM || shape[0] == 0 {
            return self.nested(shape, |i| f64::from(values[i]));
        }
        self.begin_array()?;
        let depth = self.stack.len();
        let rows = shape[0];
        let per_row = values.len() / rows;
        let rows_per_group = ((1usize << 17) / per_row.max(1)).max(1);
        let groups: Vec<(usize, usize)> =
            (0..rows).step_by(rows_per_group).map(|r| (r, (r + rows_per_group).min(rows))).collect();
        for wave in groups.chunks(2 * rayon::current_num_threads()) {
            let bufs: Vec<Vec<u8>> = wave
                .iter()
                .map(|_| {
                    let mut b = self.pool.pop().unwrap_or_default();
                    b.clear();
                    b
                })
                .collect();
            let texts: Vec<io::Result<(Vec<u8>, u64)>> = wave
                .par_iter()
                .zip(bufs)
                .map(|(&(r0, r1), buf)| {
                    let mut w = PyJsonWriter::fragment(buf, depth);
                    for r in r0..r1 {
                        let row = &values[r * per_row..(r + 1) * per_row];
                        w.nested(&shape[1..], |e| f64::from(row[e]))?;
                    }
                    let non_finite = w.non_finite;
                    Ok((w.finish()?, non_finite))
                })
                .collect();
            for t in texts {
                let (text, non_finite) = t?;
                self.append_fragment(&text, non_finite)?;
                self.pool.push(text);
            }
        }
        self.end_array()
    }

    /// Writes everything buffered to the inner writer and returns it.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()?;
        Ok(self.out)
    }

    /// Bytes buffered but not yet handed to the inner writer.
    pub fn flush_buffer(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

fn itoa_buf(value: i64) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// Appends `s` as a JSON string literal with Python's `ensure_ascii=True` escaping.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(ch as u8),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut PyJsonWriter<Vec<u8>>) -> io::Result<()>) -> String {
        let mut w = PyJsonWriter::new(Vec::new());
        f(&mut w).unwrap();
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn layout_matches_python_indent_2() {
        // python3 -c 'import json,sys; json.dump({"a": [1, [2.5, []]], "b": {}, "c": {"d": "x"}}, sys.stdout, indent=2)'
        let text = render(|w| {
            w.begin_object()?;
            w.key("a")?;
            w.begin_array()?;
            w.int(1)?;
            w.begin_array()?;
            w.float(2.5)?;
            w.begin_array()?;
            w.end_array()?;
            w.end_array()?;
            w.end_array()?;
            w.key("b")?;
            w.begin_object()?;
            w.end_object()?;
            w.key("c")?;
            w.begin_object()?;
            w.key_string("d", "x")?;
            w.end_object()?;
            w.end_object()
        });
        let want = "{\n  \"a\": [\n    1,\n    [\n      2.5,\n      []\n    ]\n  ],\n  \"b\": {},\n  \"c\": {\n    \"d\": \"x\"\n  }\n}";
        assert_eq!(text, want);
    }

    #[test]
    fn nested_shapes() {
        let text = render(|w| w.nested(&[2, 2], |i| i as f64));
        assert_eq!(text, "[\n  [\n    0.0,\n    1.0\n  ],\n  [\n    2.0,\n    3.0\n  ]\n]");
        assert_eq!(render(|w| w.nested(&[], |_| 0.5)), "0.5");
        assert_eq!(render(|w| w.nested(&[0], |_| 0.5)), "[]");
        assert_eq!(render(|w| w.nested(&[2, 0], |_| 0.5)), "[\n  [],\n  []\n]");
    }

    #[test]
    fn parallel_nested_equals_sequential() {
        let values: Vec<f32> = (0..600_000).map(|i| (i as f32 * 0.37).sin() * 1e-3).collect();
        for shape in [vec![600, 1000], vec![3, 200, 1000], vec![600_000]] {
            let a = render(|w| {
                w.begin_object()?;
                w.key("x")?;
                w.nested(&shape, |i| f64::from(values[i]))?;
                w.end_object()
            });
            let b = render(|w| {
                w.begin_object()?;
                w.key("x")?;
                w.nested_f32(&shape, &values)?;
                w.end_object()
            });
            assert!(a == b, "shape {shape:?}");
        }
    }

    #[test]
    fn strings_escape_like_python() {
        // json.dumps("a\"b\\c\n\u00e9\U0001F600\x7f\x01")
        let mut out = Vec::new();
        push_json_string(&mut out, "a\"b\\c\n\u{e9}\u{1F600}\u{7f}\u{1}");
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\\u007f\\u0001\"");
    }
}
