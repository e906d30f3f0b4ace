"""Write one export variant of a fine-tuned encoder: bf16, int8 (TorchScript), ONNX or magnitude-pruned.

Every variant is a folder that loads with its own runtime and no code of this project: transformers for bf16 and
pruned, `torch.jit.load` for int8, ONNX Runtime for onnx. Each holds the tokenizer, config.json (label names) and
`variant.json`, which says how it was made and how to run it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

VARIANT_FILE = "variant.json"
TORCHSCRIPT_FILE = "model.pt"
ONNX_FILE = "model.onnx"
# Runtime per variant: the library a stranger needs to load the folder.
RUNTIMES = {"bf16": "transformers", "pruned": "transformers", "int8": "torchscript", "onnx": "onnxruntime"}
# The precision each variant computes in; the original is measured in fp32 beside them.
PRECISIONS = {"bf16": "bf16", "pruned": "fp32", "int8": "int8", "onnx": "fp32"}
# ONNX needs example inputs to trace the graph: two texts of different lengths, so no size is taken as fixed.
_SAMPLE_TEXTS = ["A short text.", "A somewhat longer second text, so the batch has padding in it."]


class _LogitsOnly(torch.nn.Module):
    """The model as a function of plain tensors to logits: what TorchScript and ONNX graphs can hold."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _sample_inputs(tokenizer: PreTrainedTokenizerBase) -> tuple[torch.Tensor, torch.Tensor]:
    batch = tokenizer(_SAMPLE_TEXTS, padding=True, return_tensors="pt")
    return batch["input_ids"], batch["attention_mask"]


def write_bf16(model: PreTrainedModel, folder: Path) -> None:
    """bf16 weights in safetensors: half the size, loaded by transformers as they are."""
    model.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)


def write_pruned(model: PreTrainedModel, folder: Path, sparsity: float) -> dict[str, Any]:
    """The smallest-magnitude `sparsity` share of the encoder's Linear weights set to zero, made permanent.

    One global threshold over all layers (torch.nn.utils.prune.global_unstructured), so layers that matter less lose
    more; the task head is left whole, since it is small and every one of its weights reads a class.
    """
    from torch.nn.utils import prune

    head = _head_modules(model)
    linears = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and name not in head]
    prune.global_unstructured(
        [(m, "weight") for m in linears], pruning_method=prune.L1Unstructured, amount=float(sparsity)
    )
    for module in linears:
        prune.remove(module, "weight")  # the mask is multiplied in: plain weights, loadable anywhere
    zeros = sum(int((m.weight == 0).sum()) for m in linears)
    total = sum(m.weight.numel() for m in linears)
    model.save_pretrained(folder, safe_serialization=True)
    return {
        "sparsity": sparsity,
        "prune": "weights",
        "pruned_layers": len(linears),
        "zero_share": round(zeros / max(total, 1), 4),
    }


def write_head_pruned(model: PreTrainedModel, folder: Path, sparsity: float) -> dict[str, Any]:
    """The `sparsity` share of attention heads with the least weight removed: their query, key and value rows and
    output columns set to zero, so they add nothing; at least one head stays in every layer.

    A head's weight is the norm of its value rows times that of its output columns (what it can add to the residual
    stream). The shapes stay, so plain transformers loads the folder: transformers 5 has no prune_heads any more, and
    a layer with fewer heads than its config says would not load.
    """
    blocks = _attention_blocks(model)
    if not blocks:
        raise ValueError(
            "head pruning reads BERT-style attention (query, key, value and attention.output.dense), which this "
            "model does not have; prune its weights instead (prune: weights)"
        )
    heads = model.config.num_attention_heads
    size = blocks[0][0].out_features // heads
    ranked = []
    for layer, (_, _, value, output) in enumerate(blocks):
        for head in range(heads):
            rows = slice(head * size, (head + 1) * size)
            weight = float(value.weight[rows].norm() * output.weight[:, rows].norm())
            ranked.append((weight, layer, head))
    removed: dict[int, list[int]] = {}
    wanted = round(sparsity * len(ranked))
    for _, layer, head in sorted(ranked):
        if sum(map(len, removed.values())) == wanted:
            break
        if len(removed.get(layer, [])) < heads - 1:  # a layer keeps at least one head: the next weakest goes instead
            removed.setdefault(layer, []).append(head)
    with torch.no_grad():
        for layer, gone in removed.items():
            query, key, value, output = blocks[layer]
            for head in gone:
                rows = slice(head * size, (head + 1) * size)
                for projection in (query, key, value):
                    projection.weight[rows] = 0
                    if projection.bias is not None:
                        projection.bias[rows] = 0
                output.weight[:, rows] = 0
    model.save_pretrained(folder, safe_serialization=True)
    count = sum(len(gone) for gone in removed.values())
    return {
        "sparsity": sparsity,
        "prune": "heads",
        "pruned_heads": {str(layer): sorted(gone) for layer, gone in sorted(removed.items())},
        "zero_share": round(count / len(ranked), 4),
    }


def _attention_blocks(model: PreTrainedModel) -> list[tuple[torch.nn.Linear, ...]]:
    # (query, key, value, output) Linear layers of each BERT-style attention block, in layer order.
    modules = dict(model.named_modules())
    blocks = []
    for name, module in modules.items():
        if name.endswith("attention.self") and all(hasattr(module, p) for p in ("query", "key", "value")):
            output = modules.get(name.removesuffix("self") + "output.dense")
            if isinstance(output, torch.nn.Linear):
                blocks.append((module.query, module.key, module.value, output))
    return blocks


def _head_modules(model: PreTrainedModel) -> set[str]:
    # The new head's modules are the ones missing from the base model; transformers names them per architecture
    # (classifier, score, ...). Their names are the ones under no base-model prefix.
    prefix = getattr(model, "base_model_prefix", "")
    return {name for name, _ in model.named_modules() if name and not name.startswith(prefix)}


def write_int8(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """Linear layers quantized to int8 (torch's dynamic quantization), saved as a TorchScript program."""
    from engine.predict import with_precision

    quantized = with_precision(model.float(), "int8")
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # strict=False: the traced function returns a plain tensor; check_trace re-runs it on the same inputs only.
        traced = torch.jit.trace(_LogitsOnly(quantized).eval(), _sample_inputs(tokenizer), strict=False)
    torch.jit.save(traced, str(folder / TORCHSCRIPT_FILE))


def write_onnx(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """An ONNX graph (torch.onnx's exporter) with batch and sequence length left free, in one self-contained file."""
    import onnx

    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dims = {0: batch, 1: sequence}
    scratch = folder / "export"
    scratch.mkdir()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        torch.onnx.export(
            _LogitsOnly(model.float()).eval(),
            _sample_inputs(tokenizer),
            str(scratch / ONNX_FILE),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_shapes={"input_ids": dims, "attention_mask": dims},
            dynamo=True,
            verbose=False,
        )
    # The exporter writes weights as external data; one file (the model is far below protobuf's 2 GB) is simpler to
    # copy and is what ONNX Runtime users expect.
    graph = onnx.load(str(scratch / ONNX_FILE), load_external_data=True)
    onnx.save(graph, str(folder / ONNX_FILE), save_as_external_data=False)
    for path in scratch.iterdir():
        path.unlink()
    scratch.rmdir()


def write_variant_file(folder: Path, info: dict[str, Any]) -> None:
    """variant.json: which variant this is, its runtime and precision, and how it was made."""
    (folder / VARIANT_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_variant_file(folder: Path) -> dict[str, Any] | None:
    """A variant folder's variant.json; None for a model folder as training wrote it."""
    path = Path(folder) / VARIANT_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
