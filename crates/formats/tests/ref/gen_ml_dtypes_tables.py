#!/usr/bin/env python3
"""Reference fixtures for nibble-formats' element codecs, produced by an independent
implementation: Google's `ml_dtypes` (written against 0.6.0) on top of numpy.

Writes, next to this script:

  decode_tables.txt   `<format> <code hex> <f32 bits hex | nan>` for every code of
                      e2m1 (float4_e2m1fn), e4m3 (float8_e4m3fn), e5m2 (float8_e5m2),
                      ue8m0 (float8_e8m0fnu), int4, uint4, int2, uint2, and ue4m3
                      (float8_e4m3fn codes 0x00..0x7f, i.e. the unsigned half).
  encode_cases.txt    `<format> <input f32 bits hex> <code hex>`: the code ml_dtypes
                      produces for a float32 -> format cast (round to nearest, ties to even)
                      for e2m1, e4m3 and e5m2. Only inputs with |x| <= the format's max finite
                      value are included: ml_dtypes' e4m3fn/e5m2 casts overflow to NaN/Inf,
                      whereas nibble-formats saturates on purpose (tested elsewhere).

Usage:
  python3 gen_ml_dtypes_tables.py           # (re)write the fixtures
  python3 gen_ml_dtypes_tables.py --check   # exit 1 with a diff summary if they are stale
"""

import argparse
import difflib
import pathlib
import sys

import ml_dtypes
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
SEED = 20240611
RANDOM_PER_FORMAT = 3000

# name in the fixtures -> (ml_dtypes type, number of codes)
DECODE_FORMATS = [
    ("e2m1", ml_dtypes.float4_e2m1fn, 16),
    ("e4m3", ml_dtypes.float8_e4m3fn, 256),
    ("e5m2", ml_dtypes.float8_e5m2, 256),
    ("ue8m0", ml_dtypes.float8_e8m0fnu, 256),
    ("ue4m3", ml_dtypes.float8_e4m3fn, 128),
    ("int4", ml_dtypes.int4, 16),
    ("uint4", ml_dtypes.uint4, 16),
    ("int2", ml_dtypes.int2, 4),
    ("uint2", ml_dtypes.uint2, 4),
]

INT_BITS = {ml_dtypes.int4: 4, ml_dtypes.uint4: 4, ml_dtypes.int2: 2, ml_dtypes.uint2: 2}

ENCODE_FORMATS = [
    ("e2m1", ml_dtypes.float4_e2m1fn, 16),
    ("e4m3", ml_dtypes.float8_e4m3fn, 256),
    ("e5m2", ml_dtypes.float8_e5m2, 256),
]


def f32_hex(x):
    return "%08x" % int(np.asarray(x, dtype=np.float32).view(np.uint32))


def decode_codes(dtype, n):
    """float32 values of codes 0..n-1, obtained by reinterpreting the code byte as `dtype`."""
    codes = np.arange(n, dtype=np.uint8)
    vals = codes.view(dtype).astype(np.float32)
    bits = INT_BITS.get(dtype)
    if bits is not None:
        # Cross-check the sub-byte integer view against the integer -> code direction, so that the
        # table does not depend on how ml_dtypes treats the unused high bits of the byte.
        back = vals.astype(np.int64).astype(dtype).view(np.uint8) & ((1 << bits) - 1)
        assert np.array_equal(back, codes), (dtype, back, codes)
    return codes, vals


def decode_lines():
    out = []
    for name, dtype, n in DECODE_FORMATS:
        codes, vals = decode_codes(dtype, n)
        for c, v in zip(codes, vals):
            out.append("%s %02x %s" % (name, c, "nan" if np.isnan(v) else f32_hex(v)))
    return out


def next_f32(x, direction):
    return np.nextafter(np.float32(x), np.float32(direction), dtype=np.float32)


def encode_inputs(dtype, n, rng):
    fi = ml_dtypes.finfo(dtype)
    fmax, min_sub, min_norm = (np.float32(v) for v in (fi.max, fi.smallest_subnormal, fi.smallest_normal))
    _, vals = decode_codes(dtype, n)
    finite = vals[np.isfinite(vals)]
    assert finite.max() == fmax
    pos = np.unique(finite[finite >= 0])  # sorted, +0 first
    assert pos[1] == min_sub
    xs = list(finite)  # every representable value, both zeros included
    # Every tie between consecutive values, and one f32 ulp either side of it, both signs.
    mids = (pos[:-1].astype(np.float64) + pos[1:]) / 2
    assert np.array_equal(mids.astype(np.float32).astype(np.float64), mids)  # exact in f32
    for m in mids.astype(np.float32):
        for v in (m, next_f32(m, np.inf), next_f32(m, -np.inf)):
            xs += [v, -v]
    # The subnormal range and the first normal binade, on a grid 8x finer than the subnormal step.
    for k in range(int(2 * min_norm / min_sub) * 8 + 1):
        v = np.float32(k * min_sub / 8)
        xs += [v, -v]
    # Far below the smallest subnormal (rounds to a signed zero), down to the f32 subnormals.
    for v in (min_sub / 4, min_sub / 1024, 1e-30, np.finfo(np.float32).tiny,
              np.finfo(np.float32).smallest_subnormal):
        xs += [np.float32(v), -np.float32(v)]
    # Log-uniform random magnitudes from min_sub / 4 to max, random signs.
    lo, hi = np.log2(np.float64(min_sub) / 4), np.log2(np.float64(fmax))
    mags = np.exp2(rng.uniform(lo, hi, RANDOM_PER_FORMAT)).astype(np.float32)
    signs = np.where(rng.randint(0, 2, RANDOM_PER_FORMAT) == 1, -1, 1).astype(np.float32)
    xs += list(mags * signs)
    arr = np.array(xs, dtype=np.float32)
    arr = arr[np.abs(arr) <= fmax]
    return np.unique(arr.view(np.uint32)).view(np.float32)  # de-duplicated, ordered by bits


def encode_lines():
    rng = np.random.RandomState(SEED)  # legacy generator: numpy guarantees its stream is frozen
    out = []
    for name, dtype, n in ENCODE_FORMATS:
        xs = encode_inputs(dtype, n, rng)
        codes = xs.astype(dtype).view(np.uint8)
        back = codes.view(dtype).astype(np.float32)
        assert not np.isnan(back).any() and np.isfinite(back).all(), name
        for x, c in zip(xs, codes):
            out.append("%s %s %02x" % (name, f32_hex(x), c))
    return out


def render(header, lines):
    return "".join("# %s\n" % h for h in header) + "".join(l + "\n" for l in lines)


def build():
    common = [
        "Generated by gen_ml_dtypes_tables.py from ml_dtypes (0.6.0) + numpy. Do not edit by hand.",
    ]
    return {
        "decode_tables.txt": render(
            common + ["<format> <code hex> <f32 bits hex | nan>"], decode_lines()),
        "encode_cases.txt": render(
            common + ["<format> <input f32 bits hex> <code hex>; |input| <= format max, RNE",
                      "numpy.random.RandomState seed %d, %d random inputs per format"
                      % (SEED, RANDOM_PER_FORMAT)],
            encode_lines()),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--check", action="store_true",
                    help="compare with the committed fixtures instead of writing them")
    args = ap.parse_args()
    files = build()
    if not args.check:
        for name, text in files.items():
            (HERE / name).write_text(text)
            print("wrote %s (%d records)" % (name, sum(not l.startswith("#") for l in text.splitlines())))
        return 0
    stale = 0
    for name, text in files.items():
        path = HERE / name
        old = path.read_text() if path.exists() else ""
        if old == text:
            print("%s: up to date" % name)
            continue
        stale += 1
        diff = list(difflib.unified_diff(old.splitlines(), text.splitlines(),
                                         "committed/" + name, "regenerated/" + name, lineterm="", n=0))
        changed = sum(1 for l in diff if l[:1] in "+-" and not l.startswith(("+++", "---")))
        print("%s: STALE (%s, %d changed lines)" % (name, "missing" if not path.exists() else "differs", changed))
        for l in diff[:40]:
            print("  " + l)
        if len(diff) > 40:
            print("  ... (%d more diff lines)" % (len(diff) - 40))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
