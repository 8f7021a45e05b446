# llama.cpp's tokenizer (through llama-cpp-python, vocabulary only) on a GGUF file: prints the
# ids of TEXT, comma-separated, without BOS and without parsing special tokens.
# Usage: llama_cpp_tokenize.py model.gguf TEXT
import sys
from llama_cpp import Llama

m = Llama(sys.argv[1], vocab_only=True, verbose=False)
print(",".join(str(i) for i in m.tokenize(sys.argv[2].encode(), add_bos=False, special=False)))
