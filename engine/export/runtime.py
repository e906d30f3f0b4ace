"""Run an exported variant folder (TorchScript int8, ONNX) behind the interface the Predictor calls.

The Predictor batches, pads and reads `model(**inputs).logits`, `model.config` and the device of
`model.parameters()`; these wrappers answer exactly that, so classify() and tag() work on every variant unchanged.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig

from engine.export.writers import ONNX_FILE, TORCHSCRIPT_FILE


class RuntimeModel:
    """A model run by another runtime, seen as a transformers model that returns logits."""

    def __init__(self, folder: Path, run: Any):
        self.config = AutoConfig.from_pretrained(folder)
        self._run = run
        self._device_probe = torch.zeros(1)  # the Predictor asks the parameters where to put its inputs: the CPU

    def parameters(self):
        """One CPU tensor, so `next(model.parameters()).device` is the CPU."""
        yield self._device_probe

    def eval(self) -> RuntimeModel:
        return self

    def __call__(self, *, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> SimpleNamespace:
        # token_type_ids are all zeros for one text per row, which is the graphs' own default.
        return SimpleNamespace(logits=self._run(input_ids, attention_mask))


def load_runtime_model(folder: Path, runtime: str) -> RuntimeModel:
    """The variant in `folder` ready to call: 'torchscript' (torch.jit.load) or 'onnxruntime'."""
    folder = Path(folder)
    if runtime == "torchscript":
        program = torch.jit.load(str(folder / TORCHSCRIPT_FILE), map_location="cpu").eval()

        def run_torchscript(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return program(input_ids, attention_mask)

        return RuntimeModel(folder, run_torchscript)
    if runtime == "onnxruntime":
        return RuntimeModel(folder, _onnx_runner(folder / ONNX_FILE))
    raise ValueError(f"unknown runtime {runtime!r} in {folder}/variant.json; runtimes are torchscript, onnxruntime")


def _onnx_runner(path: Path):
    try:
        import onnxruntime
    except ImportError as exc:
        raise ValueError(f"{path.parent} is an ONNX model: install ONNX Runtime (pip install onnxruntime)") from exc
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the cores the Predictor already settled on
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run_onnx(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feeds = {
            "input_ids": input_ids.cpu().numpy().astype(np.int64),
            "attention_mask": attention_mask.cpu().numpy().astype(np.int64),
        }
        return torch.from_numpy(session.run(["logits"], feeds)[0])

    return run_onnx
