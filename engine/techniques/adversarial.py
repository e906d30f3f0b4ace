"""Adversarial training (FGM, PGD) on the embedding outputs, and the robustness check the report runs with it.

The perturbation is added to what the input-embedding layer returns, through a forward hook that is removed after
each step: it works whether the embedding weights train or are frozen (MiniLM's are by default, and LoRA freezes
them), and nothing of it remains in the saved model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import Trainer

from engine.techniques import AdversarialSpec

NORM_FLOOR = 1e-12


def embedding_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The input-embedding layers of a model, or of every member of an ensemble."""
    members = getattr(model, "members", None)
    if members is not None:
        return [member.get_input_embeddings() for member in members]
    return [model.get_input_embeddings()]


class Perturbation:
    """Adds one tensor per embedding layer to its output while active; `None` there means a zero that records its
    gradient (the direction to push in)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.layers = embedding_layers(model)
        self.deltas: list[torch.Tensor | None] = [None] * len(self.layers)
        self.probes: list[torch.Tensor | None] = [None] * len(self.layers)

    @contextmanager
    def active(self, deltas: list[torch.Tensor | None] | None = None) -> Iterator[Perturbation]:
        """Within the block, forward passes see the embeddings plus `deltas` (probes recording gradients if None)."""
        self.deltas = list(deltas) if deltas is not None else [None] * len(self.layers)
        self.probes = [None] * len(self.layers)
        handles = [layer.register_forward_hook(self._hook(i)) for i, layer in enumerate(self.layers)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, index: int) -> Any:
        def add(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
            delta = self.deltas[index]
            if delta is None or delta.requires_grad:
                probe = torch.zeros_like(output, requires_grad=True) if delta is None else delta
                self.probes[index] = probe
                return output + probe
            return output + delta.to(output.dtype)

        return add

    def gradients(self) -> list[torch.Tensor | None]:
        """The gradients the last backward pass left on the probes."""
        return [None if probe is None else probe.grad for probe in self.probes]


def step_along(gradient: torch.Tensor, size: float) -> torch.Tensor:
    """`size` times the gradient scaled to unit L2 norm per example (over positions and features)."""
    grad = gradient.detach().float()
    norm = grad.flatten(1).norm(dim=1).clamp_min(NORM_FLOOR).view(-1, *([1] * (grad.dim() - 1)))
    return size * grad / norm


def project(delta: torch.Tensor, radius: float) -> torch.Tensor:
    """`delta` pulled back inside the L2 ball of `radius`, per example."""
    norm = delta.flatten(1).norm(dim=1).clamp_min(NORM_FLOOR).view(-1, *([1] * (delta.dim() - 1)))
    return delta * torch.clamp(radius / norm, max=1.0)


class AdversarialTrainer(Trainer):
    """A Trainer whose every step also trains on the batch with its embeddings perturbed against the labels:
    FGM in one step of size epsilon, PGD in `steps` projected steps. The gradients of both passes add up."""

    def __init__(self, *args: Any, adversarial: AdversarialSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.adversarial = adversarial

    def training_step(self, model: torch.nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None):
        perturbation = Perturbation(model)
        with perturbation.active():  # the clean pass, with probes that record the embeddings' gradient
            loss = super().training_step(model, inputs, num_items_in_batch)
        deltas = [None if g is None else step_along(g, self.adversarial.epsilon) for g in perturbation.gradients()]
        if self.adversarial.method == "pgd":
            deltas = self._pgd(model, inputs, perturbation, deltas)
        with perturbation.active([None if d is None else d.detach() for d in deltas]):
            super().training_step(model, inputs, num_items_in_batch)  # its backward adds the adversarial gradient
        return loss

    def _pgd(self, model: torch.nn.Module, inputs: dict[str, Any], perturbation: Perturbation, deltas: list) -> list:
        # The first FGM step is the start; each further step moves along the new gradient and is projected back
        # into the epsilon ball. These passes only find the direction: their gradients never reach the weights.
        epsilon, steps = self.adversarial.epsilon, self.adversarial.steps
        size = 2.0 * epsilon / steps
        deltas = [None if d is None else project(d * (size / epsilon), epsilon) for d in deltas]
        prepared = self._prepare_inputs(inputs)
        for _ in range(steps - 1):
            probes = [None if d is None else d.detach().requires_grad_(True) for d in deltas]
            with perturbation.active(probes), self.compute_loss_context_manager():
                loss = self.compute_loss(model, prepared)
            live = [p for p in probes if p is not None]
            grads = torch.autograd.grad(loss, live, allow_unused=True)
            moved = iter(grads)
            deltas = [
                None if p is None else project(p.detach() + step_along(_or_zero(next(moved), p), size), epsilon)
                for p in probes
            ]
        return deltas


def _or_zero(gradient: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if gradient is None else gradient


def robustness(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: list[str],
    labels: list[int],
    *,
    epsilon: float,
    max_length: int,
    batch_size: int = 32,
) -> dict[str, float | None]:
    """Accuracy on `texts` as they are and with their embeddings pushed by an FGM step of `epsilon` against the
    true label (a white-box attack of the size the adversarial model trained with)."""
    if not texts:
        return {"clean_accuracy": None, "perturbed_accuracy": None}
    device = next(model.parameters()).device
    model.eval()  # dropout off: the attack and the answer see the model that serves
    perturbation = Perturbation(model)
    clean = attacked = 0
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        gold = torch.tensor(labels[start : start + batch_size], device=device)
        with torch.enable_grad(), perturbation.active():
            logits = model(**batch).logits.float()
            loss = torch.nn.functional.cross_entropy(logits, gold)
            live = [p for p in perturbation.probes if p is not None]
            grads = iter(torch.autograd.grad(loss, live, allow_unused=True))
        deltas = [None if p is None else step_along(_or_zero(next(grads), p), epsilon) for p in perturbation.probes]
        with torch.no_grad(), perturbation.active(deltas):
            pushed = model(**batch).logits.float()
        clean += int((logits.argmax(-1) == gold).sum())
        attacked += int((pushed.argmax(-1) == gold).sum())
    return {"clean_accuracy": round(clean / len(texts), 4), "perturbed_accuracy": round(attacked / len(texts), 4)}
