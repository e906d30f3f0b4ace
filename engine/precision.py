"""Pure-bf16 training for the encoder tasks: the model computes in bf16 end to end, while the optimizer updates
fp32 master copies of the trained weights and keeps its state (Adam's moments) in fp32.

Precision 'bf16-pure' asks for it. Autocast, the Trainer's own `bf16=True` and the default, keeps fp32 weights and
casts them and many activations on every step; on a CPU with AVX-512 BF16 pure bf16 trained 6-14% faster on 3,000
review snippets (bench/train_speed.py), but scored 4 points lower there (one seed: fp32 and autocast agreed).
bf16 weights alone would also lose small updates: at a learning rate of 1e-4 most steps change a
weight by less than bf16's resolution (1 part in 256), so the updates go to fp32 masters and each step rounds them
into the model's bf16 weights.
"""

from __future__ import annotations

from typing import Any

import torch

COMPUTE_DTYPE = torch.bfloat16


def pure_bf16(precision: str, architecture: str) -> bool:
    """True when a job trains in pure bf16: 'bf16-pure' was chosen and the task fine-tunes an encoder with a head.

    Chat keeps autocast (its frozen base is bf16 under LoRA already), and so does plain 'bf16': on 3,000 review
    snippets pure bf16 trained 6-14% faster but scored 4 points lower than autocast, which matched fp32 (one seed).
    """
    return precision == "bf16-pure" and architecture == "encoder"


def with_master_weights(optimizer_cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """A subclass of `optimizer_cls` that steps fp32 masters of the (bf16) parameters it is given."""

    class MasterWeights(optimizer_cls):  # type: ignore[misc, valid-type]
        __doc__ = f"{optimizer_cls.__name__} over fp32 master copies of bf16 weights."

        def __init__(self, params: Any, **kwargs: Any) -> None:
            self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []  # (model weight, its fp32 master)
            groups = [dict(group) for group in _groups(params)]
            for group in groups:
                masters = []
                for weight in group["params"]:
                    master = weight.detach().to(torch.float32, copy=True)
                    self.pairs.append((weight, master))
                    masters.append(master)
                group["params"] = masters
            super().__init__(groups, **kwargs)

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            stepped = []
            for weight, master in self.pairs:
                if weight.grad is None:
                    master.grad = None
                else:
                    if master.grad is None:
                        master.grad = torch.empty_like(master)
                    stepped.append((weight, master))
            if stepped:  # one foreach call per direction, not a Python loop of copies per tensor
                torch._foreach_copy_([m.grad for _, m in stepped], [w.grad for w, _ in stepped])
            loss = super().step(closure)
            if stepped:
                torch._foreach_copy_([w for w, _ in stepped], [m for _, m in stepped])  # rounds to bf16
            return loss

        def zero_grad(self, set_to_none: bool = True) -> None:
            super().zero_grad(set_to_none)  # the masters' gradients
            for weight, _ in self.pairs:
                if set_to_none:
                    weight.grad = None
                elif weight.grad is not None:
                    weight.grad.zero_()

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            # A resumed job: the moments come back from the checkpoint, the masters from the saved (bf16) weights.
            super().load_state_dict(state_dict)
            with torch.no_grad():
                for weight, master in self.pairs:
                    master.copy_(weight)

    MasterWeights.__name__ = MasterWeights.__qualname__ = f"MasterWeights{optimizer_cls.__name__}"
    return MasterWeights


def _groups(params: Any) -> list[Any]:
    params = list(params)
    return params if params and isinstance(params[0], dict) else [{"params": params}]


def to_storage_dtype(model: torch.nn.Module) -> torch.nn.Module:
    """The model in fp32 for saving when it trained in bf16: a folder every runtime and later fine-tune reads."""
    if any(p.dtype == COMPUTE_DTYPE for p in model.parameters()):
        model.to(torch.float32)
    return model
