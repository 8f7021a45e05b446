#!/usr/bin/env python3
"""Reference token ids from Hugging Face `tokenizers` (an independent BPE implementation).

Builds a byte-level BPE from a vocabulary dump of gguf_vocab.py: model BPE(vocab, merges) with
SmolLM2's pre-tokenizer Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False,
use_regex=True)], ByteLevel decoder, and the control tokens as special added tokens. Encodes every
string of STRINGS.json twice (special tokens parsed, and with `encode_special_tokens = True`,
i.e. as plain text), decodes the first ids back, and writes the results to OUT.json. Also saves
the tokenizer as HF tokenizer.json (pair-form merges) and a copy with "a b" string merges, for
the Rust tokenizer.json loader.

usage: hf_reference.py VOCAB.json STRINGS.json OUT.json TOKENIZER_DIR
"""
import json
import os
import sys
from importlib.metadata import version

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers


def build(dump: dict) -> Tokenizer:
    tokens = dump["tokens"]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens), "duplicate tokens"
    merges = [tuple(m.split(" ")) for m in dump["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    control = [i for i, t in enumerate(dump["token_types"]) if t == 3]
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i in control])
    for i in control:
        assert tok.token_to_id(tokens[i]) == i
    return tok


def main() -> None:
    vocab_path, strings_path, out_path, tok_dir = sys.argv[1:5]
    with open(vocab_path, encoding="utf-8") as f:
        dump = json.load(f)
    with open(strings_path, encoding="utf-8") as f:
        strings = json.load(f)
    tok = build(dump)

    with_specials = [e.ids for e in tok.encode_batch(strings, add_special_tokens=False)]
    decoded = [tok.decode(ids, skip_special_tokens=False) for ids in with_specials]
    tok.encode_special_tokens = True
    ordinary = [e.ids for e in tok.encode_batch(strings, add_special_tokens=False)]
    tok.encode_special_tokens = False

    os.makedirs(tok_dir, exist_ok=True)
    pair_path = os.path.join(tok_dir, "tokenizer.json")
    tok.save(pair_path)
    with open(pair_path, encoding="utf-8") as f:
        saved = json.load(f)
    saved["model"]["merges"] = [
        m if isinstance(m, str) else " ".join(m) for m in saved["model"]["merges"]
    ]
    with open(os.path.join(tok_dir, "tokenizer-string-merges.json"), "w", encoding="utf-8") as f:
        json.dump(saved, f, ensure_ascii=False)

    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(
            {
                "tokenizers_version": version("tokenizers"),
                "with_specials": with_specials,
                "ordinary": ordinary,
                "decoded": decoded,
            },
            f,
            ensure_ascii=False,
        )


if __name__ == "__main__":
    main()
