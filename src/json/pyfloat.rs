//! Python's `repr(float)`, as `json.dump` writes floats.
//!
//! Python prints the shortest digit string that round-trips (David Gay's mode 0), in plain
//! notation when the decimal exponent `decpt` (value = 0.d1d2... x 10^decpt) satisfies
//! -4 < decpt <= 16, otherwise in exponent notation with a sign and at least two exponent
//! digits. `ryu` finds the same shortest, correctly rounded digits and nearly the same layout;
//! we patch the two places where the layouts differ. (tests/json_format.rs checks 8,000+
//! values against Python's own output.)

/// Longest text this module writes: sign, 17 digits, "0." plus up to 3 leading zeros, or an
/// exponent suffix. 32 bytes are enough.
pub const MAX_LEN: usize = 32;

/// Appends Python's `repr(x)` (JSON flavour: `NaN`, `Infinity`, `-Infinity`) to `out`.
#[inline]
pub fn push_f64(out: &mut Vec<u8>, x: f64) {
    let mut buf = [0u8; MAX_LEN];
    let n = format_f64(&mut buf, x);
    out.extend_from_slice(&buf[..n]);
}

/// Python's `repr(x)` as a `String` (tests, messages).
pub fn to_string(x: f64) -> String {
    let mut buf = [0u8; MAX_LEN];
    let n = format_f64(&mut buf, x);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Writes the text at the start of `buf` (at least `MAX_LEN` bytes), returns its length.
#[inline]
pub fn format_f64(buf: &mut [u8], x: f64) -> usize {
    assert!(buf.len() >= MAX_LEN);
    if !x.is_finite() {
        let s: &[u8] = if x.is_nan() {
            b"NaN"
        } else if x > 0.0 {
            b"Infinity"
        } else {
            b"-Infinity"
        };
        buf[..s.len()].copy_from_slice(s);
        return s.len();
    }
    // SAFETY: ryu writes at most 24 bytes for a finite f64; `buf` holds at least 32.
    let n = unsafe { ryu::raw::format64(x, buf.as_mut_ptr()) };
    // ryu's layout equals Python's except in two places: the exponent ("e-7" for "e-07",
    // "e30" for "e+30"), and numbers in [1e-5, 1e-4), which ryu writes as "0.0000ddd" and
    // Python as "d.dde-05". Everything else (zeros and signs included) is already right.
    let body = usize::from(buf[0] == b'-');
    // ryu's exponent is 1 to 3 digits after "e" or "e-", so an "e" can only be among the last
    // five bytes (the digits before it are at least one).
    let tail = n.saturating_sub(5).max(body);
    if let Some(e) = buf[tail..n].iter().position(|&c| c == b'e') {
        let e = tail + e;
        let (neg, digits) = if buf[e + 1] == b'-' { (true, e + 2) } else { (false, e + 1) };
        let value = buf[digits..n].iter().fold(0i32, |acc, &d| acc * 10 + i32::from(d - b'0'));
        return put_exponent(buf, e, if neg { -value } else { value });
    }
    if n - body > 6 && &buf[body..body + 6] == b"0.0000" {
        // 0.0000ddd -> d.dde-05
        let mut digits = [0u8; 24];
        let count = n - body - 6;
        digits[..count].copy_from_slice(&buf[body + 6..n]);
        let pos = put_mantissa(buf, body, &digits[..count]);
        return put_exponent(buf, pos, -5);
    }
    n
}

/// "d" or "d.ddd" from a digit string (no leading zeros).
fn put_mantissa(buf: &mut [u8], mut pos: usize, digits: &[u8]) -> usize {
    buf[pos] = digits[0];
    pos += 1;
    if digits.len() > 1 {
        buf[pos] = b'.';
        pos += 1;
        buf[pos..pos + digits.len() - 1].copy_from_slice(&digits[1..]);
        pos += digits.len() - 1;
    }
    pos
}

/// "e+NN" / "e-NN" with at least two digits, as Python writes exponents.
fn put_exponent(buf: &mut [u8], mut pos: usize, e: i32) -> usize {
    buf[pos] = b'e';
    buf[pos + 1] = if e < 0 { b'-' } else { b'+' };
    pos += 2;
    let e = e.unsigned_abs();
    if e >= 100 {
        buf[pos] = b'0' + (e / 100) as u8;
        pos += 1;
    }
    buf[pos] = b'0' + ((e / 10) % 10) as u8;
    buf[pos + 1] = b'0' + (e % 10) as u8;
    pos + 2
}

#[cfg(test)]
mod tests {
    use super::to_string;

    #[test]
    fn python_layout_rules() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456.703125, "123456.703125"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.1f32 as f64, "0.10000000149011612"),
            (9.999999747378752e-06, "9.999999747378752e-06"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (100.0, "100.0"),
            (0.5, "0.5"),
            (0.00012, "0.00012"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
        ];
        for &(x, want) in cases {
            assert_eq!(to_string(x), want, "repr({x:e})");
        }
    }
}
