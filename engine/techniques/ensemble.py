"""Ensembles: several fine-tunes of one job that answer together with their averaged probabilities.

An ensemble's model/ folder holds ensemble.json (the manifest), members/1 ... members/K (each a whole model folder),
and at its top the first member's config and tokenizer, so that everything that reads a model folder's task,
labels and tokenizer reads an ensemble's the same way.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers.modeling_outputs import ModelOutput

from engine.files import atomic_dir

MANIFEST = "ensemble.json"
MEMBERS = "members"
# Probabilities are averaged, and their log is what an ensemble returns as logits: a softmax of it gives the mean
# back exactly, so every caller that turns logits into probabilities needs no change.
LOG_FLOOR = 1e-12


@dataclass
class EnsembleOutput(ModelOutput):
    """The ensemble's answer: log of the members' mean probabilities, under the name callers read."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class EnsembleModel(torch.nn.Module):
    """Members of the same task and labels, averaged: `model(**batch).logits` is log(mean softmax)."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members; got {len(members)}")
        labels = {tuple(sorted(member.config.id2label.items())) for member in members}
        if len(labels) != 1:
            raise ValueError("ensemble members must predict the same labels in the same order")
        self.members = torch.nn.ModuleList(members)
        self.config = members[0].config

    def forward(self, **inputs: Any) -> EnsembleOutput:
        labels = inputs.pop("labels", None)
        probs = torch.stack([member(**inputs).logits.float().softmax(-1) for member in self.members]).mean(0)
        logits = probs.clamp_min(LOG_FLOOR).log()
        loss = None
        if labels is not None:  # the averaged model's own negative log-likelihood, padding (-100) skipped
            loss = torch.nn.functional.nll_loss(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
        return EnsembleOutput(loss=loss, logits=logits)

    def get_input_embeddings(self) -> torch.nn.Module:
        """The first member's (for callers that ask one model; the adversarial hooks visit every member)."""
        return self.members[0].get_input_embeddings()


def is_ensemble(model_dir: str | Path) -> bool:
    """Whether a model folder holds an ensemble."""
    return (Path(model_dir) / MANIFEST).is_file()


def save_ensemble(
    members: list[torch.nn.Module],
    save_member: Callable[[torch.nn.Module, Path], Path],
    output_dir: Path,
    details: list[dict[str, Any]],
) -> Path:
    """Write model/ with every member (saved by the task's own `save_member(model, into)`) and the manifest."""
    final = output_dir / "model"
    staging = output_dir / ".ensemble-members"
    shutil.rmtree(staging, ignore_errors=True)
    folders = [save_member(member, staging / str(i)) for i, member in enumerate(members, 1)]
    with atomic_dir(final) as partial:
        for i, folder in enumerate(folders, 1):
            shutil.move(str(folder), partial / MEMBERS / str(i))
        first = partial / MEMBERS / "1"
        for item in first.iterdir():  # config, tokenizer and code of the first member, not its weights
            if item.is_file() and not item.name.endswith((".safetensors", ".bin")):
                shutil.copy2(item, partial / item.name)
        manifest = {
            "kind": "ensemble",
            "combine": "mean of probabilities",
            "members": [{"path": f"{MEMBERS}/{i}", **detail} for i, detail in enumerate(details, 1)],
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(staging, ignore_errors=True)
    return final


def load_ensemble(model_dir: Path, load_member: Callable[[Path, str], torch.nn.Module], device: str) -> EnsembleModel:
    """The ensemble of a model folder, each member loaded by the task's own loader."""
    manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    members = [load_member(model_dir / member["path"], device) for member in manifest["members"]]
    return EnsembleModel(members).eval()


def folder_megabytes(folder: Path) -> float:
    """The size of a folder's files in MB."""
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 1)


def latency_ms(predict: Callable[[list[str]], Any], texts: list[str], repeats: int = 3) -> float:
    """Milliseconds per text for `predict` on `texts` (best of `repeats`, after one warm-up call)."""
    if not texts:
        return 0.0
    predict(texts)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        predict(texts)
        best = min(best, time.perf_counter() - started)
    return round(best * 1000 / len(texts), 2)
