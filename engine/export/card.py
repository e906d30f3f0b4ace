"""How a stranger loads an exported variant with its runtime alone: the model card's "How to use" code."""

from __future__ import annotations

import json

_READ = """import json

import numpy as np
from tokenizers import Tokenizer

folder = {path}
tokenizer = Tokenizer.from_file(f"{{folder}}/tokenizer.json")
tokenizer.enable_truncation({max_length})  # the length the model was trained with
tokenizer.enable_padding()
labels = json.load(open(f"{{folder}}/config.json", encoding="utf-8"))["id2label"]
batch = tokenizer.encode_batch(["Replace this with a text.", "And another one."])
input_ids = np.array([e.ids for e in batch], dtype=np.int64)
attention_mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
"""
_RUN = {
    "onnxruntime": """import onnxruntime

session = onnxruntime.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
logits = session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
""",
    "torchscript": """import torch

program = torch.jit.load(f"{folder}/model.pt")  # int8 Linear layers: runs on the CPU
with torch.inference_mode():
    logits = program(torch.from_numpy(input_ids), torch.from_numpy(attention_mask)).numpy()
""",
}
_ANSWER = {
    "classify": "print([labels[str(i)] for i in logits.argmax(-1)])  # one label per text\n",
    "tag": "# one tag per sub-word token; a word's tag is the one on its first token\n"
    "print([[labels[str(i)] for i in row] for row in logits.argmax(-1)])\n",
}
PACKAGES = {"onnxruntime": "onnxruntime tokenizers numpy", "torchscript": "torch tokenizers numpy"}


def runtime_usage(runtime: str, path: str, max_length: int, playground: str) -> list[str] | None:
    """Markdown lines: what to install and the code that runs the variant; None for a transformers folder."""
    if runtime not in _RUN:
        return None
    code = _READ.format(path=json.dumps(path, ensure_ascii=False), max_length=max_length)
    code += "\n" + _RUN[runtime] + _ANSWER.get(playground, _ANSWER["classify"])
    return [
        f"This folder runs with {runtime} and a tokenizer library, without transformers or Finetune Playground "
        f"(`pip install {PACKAGES[runtime]}`):",
        "",
        "```python",
        *code.rstrip("\n").splitlines(),
        "```",
        "",
    ]
