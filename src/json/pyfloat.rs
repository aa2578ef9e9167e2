//! Python's `repr(float)`, as `json.dump` writes floats.
//!
//! Python prints the shortest digit string that round-trips (David Gay's mode 0), in plain
//! notation when the decimal exponent `decpt` (value = 0.d1d2... x 10^decpt) satisfies
//! -4 < decpt <= 16, otherwise in exponent notation with a sign and at least two exponent
//! digits. `ryu` finds the same shortest, correctly rounded digits; only the layout differs,
//! so we take ryu's digits and lay them out the Python way.

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

/// Writes the text into `buf`, returns its length.
pub fn format_f64(buf: &mut [u8; MAX_LEN], x: f64) -> usize {
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
    let mut pos = 0;
    if x.is_sign_negative() {
        buf[0] = b'-';
        pos = 1;
    }
    if x == 0.0 {
        buf[pos..pos + 3].copy_from_slice(b"0.0");
        return pos + 3;
    }
    let mut ryu_buf = ryu::Buffer::new();
    let text = ryu_buf.format_finite(x.abs()).as_bytes();
    // Split ryu's text ("123.45", "1.5e-7", "1e16", "0.0001") into digits and decpt.
    let mut digits = [0u8; 20];
    let mut n_digits = 0usize;
    let mut point: Option<usize> = None; // digits seen before '.'
    let mut exp10: i32 = 0;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        match c {
            b'0'..=b'9' => {
                if n_digits == 0 && c == b'0' {
                    // leading zero: shifts the point, stores nothing
                    if point.is_some() {
                        exp10 -= 1;
                    }
                } else {
                    digits[n_digits] = c;
                    n_digits += 1;
                }
            }
            b'.' => point = Some(n_digits),
            b'e' | b'E' => {
                let mut neg = false;
                let mut e: i32 = 0;
                for &d in &text[i + 1..] {
                    match d {
                        b'-' => neg = true,
                        b'+' => {}
                        _ => e = e * 10 + i32::from(d - b'0'),
                    }
                }
                exp10 += if neg { -e } else { e };
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let int_digits = point.unwrap_or(n_digits) as i32;
    while n_digits > 1 && digits[n_digits - 1] == b'0' {
        n_digits -= 1;
    }
    let decpt = int_digits + exp10;
    let digits = &digits[..n_digits];

    if decpt <= -4 || decpt > 16 {
        buf[pos] = digits[0];
        pos += 1;
        if digits.len() > 1 {
            buf[pos] = b'.';
            pos += 1;
            buf[pos..pos + digits.len() - 1].copy_from_slice(&digits[1..]);
            pos += digits.len() - 1;
        }
        let e = decpt - 1;
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
    } else if decpt <= 0 {
        buf[pos..pos + 2].copy_from_slice(b"0.");
        pos += 2;
        for _ in 0..(-decpt) {
            buf[pos] = b'0';
            pos += 1;
        }
        buf[pos..pos + digits.len()].copy_from_slice(digits);
        pos + digits.len()
    } else {
        let decpt = decpt as usize;
        if decpt >= digits.len() {
            buf[pos..pos + digits.len()].copy_from_slice(digits);
            pos += digits.len();
            for _ in digits.len()..decpt {
                buf[pos] = b'0';
                pos += 1;
            }
            buf[pos..pos + 2].copy_from_slice(b".0");
            pos + 2
        } else {
            buf[pos..pos + decpt].copy_from_slice(&digits[..decpt]);
            pos += decpt;
            buf[pos] = b'.';
            pos += 1;
            let rest = &digits[decpt..];
            buf[pos..pos + rest.len()].copy_from_slice(rest);
            pos + rest.len()
        }
    }
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
