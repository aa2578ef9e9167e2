#!/usr/bin/env python3
"""Writes tests/fixtures/float_repr.txt: '<16 hex digits of the f64 bits> <json.dumps(x)>' per line,
for random doubles, random float32 values widened to double (what gradient files hold),
powers of ten around the notation switch, and special values. Plain Python, no numpy."""
import json, os, random, struct

random.seed(1234)
values = [0.0, -0.0, float("nan"), float("inf"), float("-inf"), 5e-324, 2.2250738585072014e-308,
          1.7976931348623157e308, 0.1, 1 / 3, 123456.703125]
for e in range(-8, 20):
    for m in (1.0, 9.999999, 1.5, 0.99999999999):
        values += [m * 10.0 ** e, -m * 10.0 ** e]
for _ in range(3000):
    values.append(struct.unpack("<d", struct.pack("<Q", random.getrandbits(64)))[0])
for _ in range(3000):
    bits = random.getrandbits(32)
    values.append(struct.unpack("<f", struct.pack("<I", bits))[0])
for _ in range(2000):
    values.append(struct.unpack("<f", struct.pack("<f", random.gauss(0, 0.01)))[0])
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "float_repr.txt")
with open(out, "w") as f:
    for x in values:
        f.write("%016x %s\n" % (struct.unpack("<Q", struct.pack("<d", x))[0], json.dumps(x)))
