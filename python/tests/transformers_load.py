"""Loads a checkpoint the way a user of transformers would — `AutoModelForCausalLM.from_pretrained(dir,
trust_remote_code=True)` in a fresh process that never imports bam_mix_torch, so a BAM checkpoint runs
on the model code stored beside it — and reports what the tests check:

    python transformers_load.py DIR IDS_CSV LOGITS_OUT.npy

prints one JSON object: the model class and module, the logits file written (float32 [T, V] for the
ids, use_cache=False), and a generate() run: the lengths of the inputs of each forward call (one new
token per call once the cache holds the prompt), its tokens, and greedy decoding's tokens without cache.
"""
import json
import sys

import numpy as np
import torch
import transformers


def main(directory, ids_csv, logits_out):
    ids = [int(x) for x in ids_csv.split(",")]
    dtype_key = "dtype" if tuple(int(p) for p in transformers.__version__.split(".")[:2]) >= (4, 56) else "torch_dtype"
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, trust_remote_code=True, **{dtype_key: torch.float32})
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids]), use_cache=False).logits[0].float().numpy()
    np.save(logits_out, logits)

    lengths = []
    model.get_input_embeddings().register_forward_hook(lambda m, i, o: lengths.append(i[0].shape[1]))
    prompt = torch.tensor([ids[:6]])
    with torch.no_grad():
        generated = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8, do_sample=False,
                                   pad_token_id=0, use_cache=True)
        greedy = prompt
        for _ in range(8):
            next_id = model(greedy, use_cache=False).logits[0, -1].argmax()
            greedy = torch.cat([greedy, next_id.view(1, 1)], dim=1)
    print(json.dumps({"class": type(model).__name__, "module": type(model).__module__,
                      "generate_input_lengths": lengths[:8], "generated": generated[0].tolist(), "greedy": greedy[0].tolist()}))


if __name__ == "__main__":
    main(*sys.argv[1:])
