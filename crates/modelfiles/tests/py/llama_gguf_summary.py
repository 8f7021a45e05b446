# Prints, as JSON, what gguf-py's GGUFReader sees in a GGUF: scalar metadata, the lengths of
# array metadata, and each tensor's name, type name and numpy shape.
import json, sys
import numpy as np
from gguf import GGUFReader, GGUFValueType

r = GGUFReader(sys.argv[1])
meta = {}
for name, field in r.fields.items():
    if name.startswith("GGUF."):
        continue
    t = field.types[0]
    if t == GGUFValueType.ARRAY:
        meta[name] = {"array_len": len(field.data)}
    elif t == GGUFValueType.STRING:
        meta[name] = bytes(field.parts[field.data[0]]).decode("utf-8")
    else:
        v = field.parts[field.data[0]][0]
        meta[name] = v.item() if hasattr(v, "item") else v
tensors = [{"name": t.name, "type": t.tensor_type.name, "shape": [int(x) for x in reversed(t.shape)]} for t in r.tensors]
print(json.dumps({"metadata": meta, "tensors": tensors}))
