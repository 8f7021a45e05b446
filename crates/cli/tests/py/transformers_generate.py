# transformers' tokenizer and greedy generation on an HF checkpoint directory (CPU, float32):
# prints the token ids of TEXT (comma-separated) on the first line and the 8-token greedy
# continuation of PROMPT on the second.
# Usage: transformers_generate.py DIR TEXT PROMPT
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

path, text, prompt = sys.argv[1], sys.argv[2], sys.argv[3]
torch.set_num_threads(2)
tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True)
print(",".join(str(i) for i in tok(text, add_special_tokens=False)["input_ids"]))
ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
with torch.no_grad():
    out = m.generate(ids, max_new_tokens=8, do_sample=False)
print(tok.decode(out[0, ids.shape[1]:]).replace("\n", "\\n"))
