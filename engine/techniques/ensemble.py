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
from transformers import PrinterCallback, Trainer, TrainingArguments
from transformers.modeling_outputs import ModelOutput

from engine.files import atomic_dir
from engine.hardware import autocast_precision, device_name

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


def members_of(model: Any) -> list[torch.nn.Module] | None:
    """The members of an ensemble, or None for a single model."""
    return list(model.members) if isinstance(model, EnsembleModel) else None


def save_model(
    model: Any,
    recipe: Any,
    tokenizer: Any,
    output_dir: Path,
    rows: list[dict[str, Any]],
    fields: tuple[str, ...] | None = None,
) -> Path:
    """Write model/: the recipe's folder for a single model, an ensemble folder for an EnsembleModel. `rows` are the
    report's member rows, in member order; the kept ones (`kept` true, or absent) describe the members in the
    manifest, with their `fields` (every key but `kept` by default)."""
    members = members_of(model)
    if members is None:
        return recipe.save(model, tokenizer, output_dir)
    kept = [row for row in rows if row.get("kept", True)]
    if len(kept) != len(members):
        raise ValueError(f"an ensemble of {len(members)} members has {len(kept)} kept member rows to describe them")
    details = [{k: v for k, v in row.items() if k != "kept" and (fields is None or k in fields)} for row in kept]
    return save_ensemble(members, lambda member, into: recipe.save(member, tokenizer, into), output_dir, details)


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


def select_members(members: list[Any], score: Callable[[Any], float | None]) -> tuple[list[int], list[float | None]]:
    """Ensemble selection on the validation split: the best member first, then each other member, best first, kept
    only if averaging it in does not lower the validation score. Returns the kept indices and each member's score."""
    alone = [score(member) for member in members]
    ranked = sorted(range(len(members)), key=lambda i: -(alone[i] if alone[i] is not None else float("-inf")))
    chosen, best = [ranked[0]], alone[ranked[0]]
    for index in ranked[1:]:
        together = score(EnsembleModel([members[i] for i in [*chosen, index]]))
        if together is not None and (best is None or together >= best):
            chosen, best = [*chosen, index], together
    return sorted(chosen), alone


def validation_score(ctx: Any, prepared: Any, model: Any) -> float | None:
    """The recipe's validation metric of a model (a member or an average of some), as the Trainer computes it."""
    args = TrainingArguments(
        output_dir=str(ctx.output_dir / "checkpoints"),  # engine.fit.CHECKPOINTS; nothing is saved there
        per_device_eval_batch_size=32,
        remove_unused_columns=False,  # the columns are the model's inputs already; an ensemble's forward takes **
        # Named, because the Trainer finds label names in forward's signature, and an ensemble's has none: without
        # them it scores nothing, and every ensemble would look no better than its best member.
        label_names=["labels"],
        report_to="none",  # one evaluation of a candidate, no training run: nothing for TensorBoard to chart
        disable_tqdm=True,
        use_cpu=device_name() == "cpu",
        bf16=autocast_precision(ctx.precision) == "bf16",
    )
    trainer = Trainer(
        model=model,
        args=args,
        eval_dataset=prepared.validation,
        data_collator=ctx.recipe.collator(ctx.tokenizer, pad_to_multiple_of=None),
        compute_metrics=ctx.recipe.compute_metrics(prepared.labels),
    )
    trainer.remove_callback(PrinterCallback)
    value = trainer.evaluate().get(f"eval_{ctx.recipe.metric_for_best_model}")
    return None if value is None else round(float(value), 4)
