//! The float format against Python's own `json.dumps` on 8,000+ doubles
//! (tests/fixtures/float_repr.txt, made by scripts/reference/make_float_cases.py).

mod common;

use saliency::json::pyfloat;
use saliency::json::reader::parse_number;

#[test]
fn floats_print_exactly_as_python() {
    let text = std::fs::read_to_string(common::root().join("tests/fixtures/float_repr.txt")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let (hex, want) = line.split_once(' ').unwrap();
        let x = f64::from_bits(u64::from_str_radix(hex, 16).unwrap());
        assert_eq!(pyfloat::to_string(x), want, "bits {hex}");
        // ... and read back to the same bits (NaN aside).
        if x.is_finite() {
            assert_eq!(parse_number(want.as_bytes()).unwrap().value.to_bits(), x.to_bits(), "{want}");
        }
        n += 1;
    }
    assert!(n > 8000);
}
