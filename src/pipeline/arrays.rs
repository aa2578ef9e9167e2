//! Observations as numpy arrays: a `.npy` of shape `(N, *observation shape)`, or for a Dict
//! observation a `.npz` with one such array per key (the same N). Any float, integer or bool
//! dtype, either byte order, C order only. Rows are read as they are needed (an uncompressed
//! array is streamed from the file; a compressed `.npz` member is read whole, within a cap).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::error::{PipelineError, Result};

/// Largest compressed-npz member read whole.
pub const MAX_INFLATED: u64 = 1 << 30;
/// Largest npy header read.
const MAX_HEADER: usize = 1 << 16;

/// An element type of a `.npy` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F2,
    F4,
    F8,
    I(u8),
    U(u8),
    Bool,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F2 => 2,
            Dtype::F4 => 4,
            Dtype::F8 => 8,
            Dtype::I(n) | Dtype::U(n) => n as usize,
            Dtype::Bool => 1,
        }
    }
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    pub dtype: Dtype,
    pub big_endian: bool,
    pub shape: Vec<usize>,
    /// Bytes before the data.
    pub data_start: u64,
}

fn bad(what: &str, detail: impl std::fmt::Display) -> PipelineError {
    PipelineError::Format(format!("{what}: {detail}"))
}

/// Reads the header at the start of `r` (`what` names the array in messages).
pub fn read_header(r: &mut impl Read, what: &str) -> Result<NpyHeader> {
    let mut head = [0u8; 8];
    r.read_exact(&mut head).map_err(|_| bad(what, "not a .npy array (too short)"))?;
    if &head[..6] != b"\x93NUMPY" {
        return Err(bad(what, "not a .npy array (no \\x93NUMPY magic)"));
    }
    let (len, prefix) = match head[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|_| bad(what, "truncated .npy header"))?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|_| bad(what, "truncated .npy header"))?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => return Err(bad(what, format!(".npy format version {v} (1 to 3 are read)"))),
    };
    if len > MAX_HEADER {
        return Err(bad(what, format!(".npy header of {len} bytes (limit {MAX_HEADER})")));
    }
    let mut text = vec![0u8; len];
    r.read_exact(&mut text).map_err(|_| bad(what, "truncated .npy header"))?;
    let text = String::from_utf8_lossy(&text);
    let field = |key: &str| -> Option<&str> {
        let at = text.find(&format!("'{key}':"))? + key.len() + 3;
        Some(text[at..].trim_start())
    };
    let descr = field("descr").and_then(|s| s.strip_prefix('\'')).and_then(|s| s.split('\'').next());
    let descr = descr.ok_or_else(|| bad(what, "the .npy header has no 'descr'"))?;
    if field("fortran_order").is_some_and(|s| s.starts_with("True")) {
        return Err(bad(what, "a Fortran-ordered array; save it in C order (numpy.ascontiguousarray)"));
    }
    let shape = field("shape").and_then(|s| s.strip_prefix('(')).and_then(|s| s.split(')').next());
    let shape = shape.ok_or_else(|| bad(what, "the .npy header has no 'shape'"))?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(what, format!("shape entry '{s}' is not a size"))))
        .collect::<Result<Vec<_>>>()?;
    let (order, code) = descr.split_at(1.min(descr.len()));
    let big_endian = order == ">";
    let dtype = match (order, code) {
        ("<" | ">" | "|" | "=", "f2") => Dtype::F2,
        ("<" | ">" | "|" | "=", "f4") => Dtype::F4,
        ("<" | ">" | "|" | "=", "f8") => Dtype::F8,
        ("<" | ">" | "|" | "=", "b1") | ("|", "?") => Dtype::Bool,
        ("<" | ">" | "|" | "=", c) if c.starts_with('i') || c.starts_with('u') => {
            let n: u8 = c[1..].parse().map_err(|_| bad(what, format!("dtype {descr}")))?;
            if ![1, 2, 4, 8].contains(&n) {
                return Err(bad(what, format!("dtype {descr}")));
            }
            if c.starts_with('i') {
                Dtype::I(n)
            } else {
                Dtype::U(n)
            }
        }
        _ => return Err(bad(what, format!("dtype {descr}: expected a float, integer or bool array"))),
    };
    Ok(NpyHeader { dtype, big_endian, shape, data_start: (prefix + len) as u64 })
}

fn f16(h: u16) -> f32 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// One element as float32.
/// An element's bytes, little-endian, zero-padded to 8.
fn le_bytes(b: &[u8], big: bool) -> [u8; 8] {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    if big {
        a[..b.len()].reverse();
    }
    a
}

/// A signed integer of `n` bytes, sign-extended.
fn signed(a: [u8; 8], n: u8) -> i64 {
    let shift = 64 - 8 * u32::from(n);
    (i64::from_le_bytes(a) << shift) >> shift
}

/// An element as float64 (integers rounded once, to float64).
fn element64(b: &[u8], dtype: Dtype, big: bool) -> f64 {
    let a = le_bytes(b, big);
    match dtype {
        Dtype::F8 => f64::from_le_bytes(a),
        Dtype::U(_) => u64::from_le_bytes(a) as f64,
        Dtype::I(n) => signed(a, n) as f64,
        _ => f64::from(element(b, dtype, big)),
    }
}

/// An element as float32 (integers and float64 rounded once, to float32).
fn element(b: &[u8], dtype: Dtype, big: bool) -> f32 {
    let a = le_bytes(b, big);
    match dtype {
        Dtype::F2 => f16(u16::from_le_bytes([a[0], a[1]])),
        Dtype::F4 => f32::from_le_bytes([a[0], a[1], a[2], a[3]]),
        Dtype::F8 => f64::from_le_bytes(a) as f32,
        Dtype::Bool => f32::from(u8::from(a[0] != 0)),
        Dtype::U(_) => u64::from_le_bytes(a) as f32,
        Dtype::I(n) => signed(a, n) as f32,
    }
}

/// One array read row after row.
pub struct RowStream {
    reader: Box<dyn Read + Send>,
    header: NpyHeader,
    /// Values per row (the product of the shape after N).
    row_len: usize,
    rows_read: usize,
    what: String,
    buf: Vec<u8>,
}

impl RowStream {
    pub fn rows(&self) -> usize {
        self.header.shape.first().copied().unwrap_or(0)
    }

    /// The shape of one row.
    pub fn row_shape(&self) -> &[usize] {
        self.header.shape.get(1..).unwrap_or(&[])
    }

    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// Appends the next row's values.
    pub fn next_row(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let (dtype, big) = (self.header.dtype, self.header.big_endian);
        out.extend(self.read_row()?.chunks_exact(dtype.size()).map(|b| element(b, dtype, big)));
        Ok(())
    }

    /// Appends the next row's values as float64 (for values that are not observations: steps
    /// and rewards).
    pub fn next_row_f64(&mut self, out: &mut Vec<f64>) -> Result<()> {
        let (dtype, big) = (self.header.dtype, self.header.big_endian);
        out.extend(self.read_row()?.chunks_exact(dtype.size()).map(|b| element64(b, dtype, big)));
        Ok(())
    }

    /// The next row's bytes.
    fn read_row(&mut self) -> Result<&[u8]> {
        self.buf.resize(self.row_len * self.header.dtype.size(), 0);
        self.reader
            .read_exact(&mut self.buf)
            .map_err(|_| bad(&self.what, format!("ends in row {} of {} (truncated?)", self.rows_read, self.rows())))?;
        self.rows_read += 1;
        Ok(&self.buf)
    }

    fn new(mut reader: Box<dyn Read + Send>, what: String) -> Result<RowStream> {
        let header = read_header(&mut reader, &what)?;
        if header.shape.is_empty() {
            return Err(bad(&what, "a 0-d array: expected (N, *observation shape)"));
        }
        let row_len = header.shape[1..].iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let row_len = row_len.ok_or_else(|| bad(&what, format!("shape {:?} overflows", header.shape)))?;
        Ok(RowStream { reader, header, row_len, rows_read: 0, what, buf: Vec::new() })
    }

    /// A `.npy` file.
    pub fn open_npy(path: &Path) -> Result<RowStream> {
        let file = File::open(path).map_err(PipelineError::io("open inputs file", path))?;
        RowStream::new(Box::new(BufReader::with_capacity(1 << 20, file)), path.display().to_string())
    }
}

/// The arrays of a `.npz`, by name (without `.npy`), in file order: uncompressed members
/// streamed from the file, compressed ones read whole (within `MAX_INFLATED`).
pub fn open_npz(path: &Path) -> Result<Vec<(String, RowStream)>> {
    let shown = path.display().to_string();
    let zip_err = |e: zip::result::ZipError| bad(&shown, format!("not a readable .npz (zip) archive: {e}"));
    let file = File::open(path).map_err(PipelineError::io("open inputs file", path))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_err)?;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(zip_err)?;
        let name = member.name().trim_end_matches(".npy").to_string();
        let what = format!("{shown}: array '{name}'");
        let reader: Box<dyn Read + Send> = if member.compression() == zip::CompressionMethod::Stored {
            let mut f = File::open(path).map_err(PipelineError::io("open inputs file", path))?;
            f.seek(SeekFrom::Start(member.data_start())).map_err(PipelineError::io("read", path))?;
            Box::new(BufReader::with_capacity(1 << 20, f.take(member.size())))
        } else {
            if member.size() > MAX_INFLATED {
                return Err(PipelineError::Limit(format!(
                    "{what}: {} bytes compressed in the .npz, over the limit of {MAX_INFLATED} (save with \
                     numpy.savez, uncompressed, to stream it)",
                    member.size()
                )));
            }
            let mut bytes = Vec::with_capacity(member.size() as usize);
            member.by_ref().take(MAX_INFLATED).read_to_end(&mut bytes).map_err(|_| bad(&what, "corrupt member"))?;
            Box::new(std::io::Cursor::new(bytes))
        };
        out.push((name.clone(), RowStream::new(reader, what)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        npy_order(descr, false, shape, data)
    }

    fn npy_order(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let header = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
        let mut h = header.into_bytes();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(b' ');
        }
        h.push(b'\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend(h);
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn rows_of_every_dtype() {
        let cases: Vec<(&str, Vec<u8>, Vec<f32>)> = vec![
            ("<f4", [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect(), vec![1.5, -2.0]),
            (">f8", [0.25f64, 3.0].iter().flat_map(|v| v.to_be_bytes()).collect(), vec![0.25, 3.0]),
            ("|u1", vec![0, 255], vec![0.0, 255.0]),
            ("<i2", [-3i16, 7].iter().flat_map(|v| v.to_le_bytes()).collect(), vec![-3.0, 7.0]),
            ("<i8", [-1i64, 9].iter().flat_map(|v| v.to_le_bytes()).collect(), vec![-1.0, 9.0]),
            ("|b1", vec![1, 0], vec![1.0, 0.0]),
            ("<f2", vec![0x00, 0x3c, 0x00, 0xc0], vec![1.0, -2.0]),
        ];
        for (descr, data, want) in cases {
            let bytes = npy(descr, "(2, 1)", &data);
            let mut s = RowStream::new(Box::new(std::io::Cursor::new(bytes)), descr.into()).unwrap();
            assert_eq!((s.rows(), s.row_shape()), (2, &[1usize][..]), "{descr}");
            let mut out = Vec::new();
            s.next_row(&mut out).unwrap();
            s.next_row(&mut out).unwrap();
            assert_eq!(out, want, "{descr}");
            assert!(s.next_row(&mut out).unwrap_err().to_string().contains("ends in row 2 of 2"));
        }
    }

    #[test]
    fn float64_rows_keep_what_float32_would_round() {
        // RL Zoo's evaluations: int64 steps past 2^24 and float64 rewards.
        let steps = [16_777_217i64, 50_000_001];
        let rewards = [0.1f64, -123.456789];
        for (descr, data, want) in [
            ("<i8", steps.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(), steps.map(|s| s as f64)),
            ("<f8", rewards.iter().flat_map(|v| v.to_le_bytes()).collect(), rewards),
        ] {
            let bytes = npy(descr, "(2,)", &data);
            let mut s = RowStream::new(Box::new(std::io::Cursor::new(bytes)), descr.into()).unwrap();
            let mut out = Vec::new();
            s.next_row_f64(&mut out).unwrap();
            s.next_row_f64(&mut out).unwrap();
            assert_eq!(out, want, "{descr}");
            assert_ne!(out.iter().map(|&v| v as f32 as f64).collect::<Vec<_>>(), want, "float32 would round {descr}");
        }
    }

    #[test]
    fn headers_that_cannot_be_read_say_why() {
        let e =
            |b: Vec<u8>| RowStream::new(Box::new(std::io::Cursor::new(b)), "x.npy".into()).err().unwrap().to_string();
        assert!(e(b"PK\x03\x04".to_vec()).contains("not a .npy array"));
        assert!(e(npy("<c8", "(1,)", &[0; 8])).contains("dtype <c8"));
        assert!(e(npy_order("<f4", true, "(2, 2)", &[0; 16])).contains("Fortran-ordered"));
        assert!(e(npy("<f4", "()", &[0; 4])).contains("0-d array"));
    }
}
