#!/usr/bin/env python3
"""Dumps a GGUF file's tokenizer metadata to JSON with the `gguf` package (gguf-py, llama.cpp's
own reader), so the Rust tests can build their BPE from an independent parse of the file.

usage: gguf_vocab.py MODEL.gguf OUT.json
"""
import json
import sys
from importlib.metadata import version

from gguf import GGUFReader


def main() -> None:
    path, out = sys.argv[1], sys.argv[2]
    reader = GGUFReader(path)

    def field(key, default=None):
        f = reader.get_field(key)
        return default if f is None else f.contents()

    dump = {
        "gguf_version": version("gguf"),
        "model": field("tokenizer.ggml.model"),
        "pre": field("tokenizer.ggml.pre"),
        "tokens": field("tokenizer.ggml.tokens"),
        "merges": field("tokenizer.ggml.merges"),
        "token_types": [int(t) for t in field("tokenizer.ggml.token_type", [])],
        "bos": field("tokenizer.ggml.bos_token_id"),
        "eos": field("tokenizer.ggml.eos_token_id"),
        "unk": field("tokenizer.ggml.unknown_token_id"),
        "pad": field("tokenizer.ggml.padding_token_id"),
        "add_bos": field("tokenizer.ggml.add_bos_token"),
        "add_eos": field("tokenizer.ggml.add_eos_token"),
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(dump, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
