"""Pure-bf16 training: bf16 weights in the model, fp32 masters and moments in the optimizer, fp32 weights saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from engine.fit import by_length
from engine.hardware import cpu_has_fast_bf16
from engine.precision import pure_bf16, with_master_weights
from engine.spec import JobSpec
from engine.train import train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _steps(weight: torch.Tensor, optimizer: torch.optim.Optimizer, n: int) -> None:
    for _ in range(n):
        weight.grad = torch.full_like(weight, 1.0)
        optimizer.step()


def test_updates_below_bf16_resolution_add_up_in_the_fp32_masters():
    # At 1.0, bf16 steps by 1/128: an SGD update of 1e-3 rounds away on bf16 weights, every time.
    plain = torch.ones(4, dtype=torch.bfloat16, requires_grad=True)
    _steps(plain, torch.optim.SGD([plain], lr=1e-3), 50)
    assert torch.equal(plain.detach(), torch.ones(4, dtype=torch.bfloat16))

    mastered = torch.ones(4, dtype=torch.bfloat16, requires_grad=True)
    optimizer = with_master_weights(torch.optim.SGD)([mastered], lr=1e-3)
    _steps(mastered, optimizer, 50)
    assert mastered.dtype == torch.bfloat16
    assert mastered.detach().float() == pytest.approx([0.95] * 4, abs=1 / 128)  # 50 x 1e-3, to bf16's resolution


def test_master_weights_keep_adams_moments_in_fp32_and_the_trainers_weight_decay_groups():
    decayed = torch.ones(3, dtype=torch.bfloat16, requires_grad=True)
    kept = torch.ones(2, dtype=torch.bfloat16, requires_grad=True)
    groups = [{"params": [decayed], "weight_decay": 0.1}, {"params": [kept], "weight_decay": 0.0}]
    optimizer = with_master_weights(torch.optim.AdamW)(groups, lr=1e-2)
    _steps(decayed, optimizer, 1)
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    assert state["exp_avg"].dtype == torch.float32 and state["exp_avg_sq"].dtype == torch.float32
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]
    assert kept.grad is None and torch.equal(kept.detach(), torch.ones(2, dtype=torch.bfloat16))


def test_pure_bf16_is_asked_for_and_only_for_encoder_tasks():
    assert pure_bf16("bf16-pure", "encoder")
    assert not pure_bf16("bf16", "encoder") and not pure_bf16("bf16-pure", "causal-lm")


def test_evaluation_rows_come_shortest_first():
    import datasets

    rows = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3], [1], [1, 2]], "labels": [0, 1, 2]})
    ordered = by_length(rows)
    assert [len(ids) for ids in ordered["input_ids"]] == [1, 2, 3] and list(ordered["labels"]) == [1, 2, 0]


@pytest.mark.slow
@pytest.mark.skipif(
    not torch.cuda.is_available() and not cpu_has_fast_bf16(), reason="bf16 runs only where the CPU or GPU has it"
)
def test_a_pure_bf16_job_trains_bf16_weights_and_saves_fp32_ones(tmp_path):
    spec = JobSpec.from_dict(
        {
            "data": {"train": str(FIXTURES / "reviews.csv"), "text_column": "review_body", "label_column": "verdict"},
            "params": {"epochs": 1, "precision": "bf16-pure", "max_length": 64},
        }
    )
    result = train(spec, tmp_path / "job")
    info = result.report["train"]
    assert info["precision"] == "bf16-pure" and info["bf16_weights"] is True
    with safe_open(result.model_dir / "model.safetensors", framework="pt") as weights:
        dtypes = {weights.get_tensor(name).dtype for name in weights.keys()}  # noqa: SIM118 (safetensors handle)
    assert dtypes == {torch.float32}
    config = json.loads((result.model_dir / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) in (None, "float32")
    # It learned: the validation loss fell below chance's log(2) at some evaluation.
    losses = [h["eval_loss"] for h in info["history"] if "eval_loss" in h]
    assert losses and min(losses) < 0.693


def test_compile_runs_when_asked_or_on_a_gpu_for_a_long_job(monkeypatch):
    from engine import arguments
    from engine.params import TrainingParams

    assert arguments.compiles(TrainingParams(compile="on"), 10)
    assert not arguments.compiles(TrainingParams(compile="off"), 10_000)
    assert not arguments.compiles(TrainingParams(), 10_000) or arguments.device_name() == "cuda"  # never on a CPU
    monkeypatch.setattr(arguments, "device_name", lambda: "cuda")
    assert arguments.compiles(TrainingParams(), arguments.COMPILE_MIN_STEPS)
    assert not arguments.compiles(TrainingParams(), arguments.COMPILE_MIN_STEPS - 1)
