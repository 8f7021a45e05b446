"""Prints what gguf-py's GGUFReader sees in a GGUF file, one tab-separated line per item.

Usage: python3 gguf_dump.py FILE.gguf
Floats are printed as the hex of their little-endian bytes, strings as the hex of their UTF-8
bytes, so the Rust side can compare the lines exactly. Array values are flattened the way
gguf-py's ReaderField.contents() flattens them; `types` is ReaderField.types.
"""
import struct
import sys

from gguf import GGUFReader, GGUFValueType as VT


def render(t, v):
    if t == VT.FLOAT32:
        return struct.pack("<f", v).hex()
    if t == VT.FLOAT64:
        return struct.pack("<d", v).hex()
    if t == VT.BOOL:
        return "1" if v else "0"
    if t == VT.STRING:
        return v.encode("utf-8").hex()
    return str(int(v))


r = GGUFReader(sys.argv[1])
print(f"version\t{r.fields['GGUF.version'].contents()}")
print(f"alignment\t{r.alignment}")
print(f"data_offset\t{r.data_offset}")
for name, f in r.fields.items():
    if name.startswith("GGUF."):
        continue
    c = f.contents()
    values = c if f.types[0] == VT.ARRAY else [c]
    leaf = f.types[-1]
    types = ",".join(t.name for t in f.types)
    print("kv", name, types, ",".join(render(leaf, v) for v in values), sep="\t")
for t in r.tensors:
    dims = ",".join(str(int(d)) for d in t.shape)
    rel = t.data_offset - r.data_offset
    print("tensor", t.name, t.tensor_type.name, dims, t.n_bytes, rel, t.data.tobytes().hex(), sep="\t")
