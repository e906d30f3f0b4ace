"""Load an exported variant folder the way a stranger would, with its runtime alone, and print its predictions.

    python load_variant.py FOLDER TEXTS.json  ->  prints a JSON list of predicted label names

Runs in a fresh Python. It imports nothing of this project (it checks that), only the runtime the folder's
variant.json names: transformers for bf16 and pruned, torch + tokenizers for TorchScript int8, onnxruntime +
tokenizers for ONNX. A tagger folder prints one list of tags per pre-split sentence (the first sub-token of each word).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _encode(folder: Path, texts: list, max_length: int) -> tuple[np.ndarray, np.ndarray, list]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding()
    words = isinstance(texts[0], list)
    encodings = tokenizer.encode_batch(texts, is_pretokenized=words)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask, [e.word_ids for e in encodings]


def _logits(folder: Path, runtime: str, texts: list, max_length: int) -> tuple[np.ndarray, list]:
    if runtime == "transformers":
        import torch
        from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        tagger = config["architectures"][0].endswith("TokenClassification")
        auto = AutoModelForTokenClassification if tagger else AutoModelForSequenceClassification
        model = auto.from_pretrained(folder).float().eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        batch = tokenizer(
            texts,
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
            is_split_into_words=tagger,
        )
        with torch.inference_mode():
            logits = model(**batch).logits.float().numpy()
        return logits, [batch.word_ids(i) for i in range(len(texts))]
    ids, mask, word_ids = _encode(folder, texts, max_length)
    if runtime == "torchscript":
        import torch

        program = torch.jit.load(str(folder / "model.pt"))
        with torch.inference_mode():
            return program(torch.from_numpy(ids), torch.from_numpy(mask)).float().numpy(), word_ids
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0], word_ids


def main() -> None:
    folder, texts_file = Path(sys.argv[1]), Path(sys.argv[2])
    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    variant = json.loads((folder / "variant.json").read_text(encoding="utf-8"))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    logits, word_ids = _logits(folder, variant["runtime"], texts, variant["max_length"])
    if logits.ndim == 2:
        answer = [labels[i] for i in logits.argmax(axis=1)]
    else:  # a tagger: the first sub-token of each word carries its tag
        answer = []
        for row, words in zip(logits.argmax(axis=2), word_ids, strict=True):
            tags, seen = [], set()
            for position, word in enumerate(words):
                if word is not None and word not in seen:
                    seen.add(word)
                    tags.append(labels[row[position]])
            answer.append(tags)
    project = sorted(name for name in sys.modules if name.split(".")[0] in ("engine", "worker", "ui"))
    if project:
        raise SystemExit(f"the variant needed this project's modules: {project}")
    print(json.dumps(answer, ensure_ascii=False))


if __name__ == "__main__":
    main()
