"""LoRA for every task: only adapters and the fresh head train, and the saved folder holds the merged model (which
predicts as the adapted one did) and the adapter alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from engine.adapters import add_adapters, lora_targets
from engine.spec import TrainingParams
from engine.tasks.base import save_model_folder

HEADS = {
    "sequence": (AutoModelForSequenceClassification, "SEQ_CLS"),
    "token": (AutoModelForTokenClassification, "TOKEN_CLS"),
}
TEXTS = ["Un accueil chaleureux, des crêpes délicieuses.", "物流很快，包装完好，五星好评！", "Never again."]


@pytest.mark.parametrize("head", sorted(HEADS))
def test_lora_trains_only_the_adapters_and_the_fresh_head(encoder_factory, head: str):
    auto, task_type = HEADS[head]
    model = auto.from_pretrained(encoder_factory(head, ["a", "b", "c"]))
    wrapped = add_adapters(model, TrainingParams(method="lora", lora_rank=4), task_type)
    trainable = [name for name, p in wrapped.named_parameters() if p.requires_grad]
    assert all("lora_" in name or "modules_to_save" in name for name in trainable), trainable
    assert any("modules_to_save" in name and "classifier" in name for name in trainable)  # the head, fully
    assert {"query", "key", "value"} <= {part for name in trainable if "lora_A" in name for part in name.split(".")}
    trained = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    assert trained < 0.1 * sum(p.numel() for p in wrapped.parameters())
    plain = auto.from_pretrained(encoder_factory(head, ["a", "b"], name="plain"))
    assert add_adapters(plain, TrainingParams(method="full"), task_type) is plain


@pytest.mark.parametrize("head", sorted(HEADS))
def test_ia3_trains_only_its_rescaling_vectors_and_the_fresh_head(encoder_factory, head: str):
    auto, task_type = HEADS[head]
    model = auto.from_pretrained(encoder_factory(head, ["a", "b", "c"]))
    wrapped = add_adapters(model, TrainingParams(method="ia3"), task_type)
    trainable = [name for name, p in wrapped.named_parameters() if p.requires_grad]
    assert all("ia3_" in name or "modules_to_save" in name for name in trainable), trainable
    assert any("ia3_" in name and ".key." in name for name in trainable)  # keys, values and the MLP output
    assert any("modules_to_save" in name and "classifier" in name for name in trainable)
    head_weights = sum(p.numel() for n, p in wrapped.named_parameters() if p.requires_grad and "modules_to_save" in n)
    vectors = sum(p.numel() for n, p in wrapped.named_parameters() if p.requires_grad and "ia3_" in n)
    lora = add_adapters(
        auto.from_pretrained(encoder_factory(head, ["a", "b", "c"], name="lora")),
        TrainingParams(method="lora"),
        task_type,
    )
    lora_weights = sum(p.numel() for n, p in lora.named_parameters() if p.requires_grad and "lora_" in n)
    assert 0 < vectors < lora_weights / 10  # far fewer weights than LoRA's r16 matrices
    assert head_weights > 0


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_an_adapted_model_is_saved_merged_with_its_adapter_beside_it(encoder_factory, tmp_path: Path, method: str):
    folder = encoder_factory("sequence", ["neg", "pos"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    params = TrainingParams(method=method, lora_rank=4)
    model = add_adapters(AutoModelForSequenceClassification.from_pretrained(folder), params, "SEQ_CLS")
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    for _ in range(3):  # move the adapters and the head away from their starting values
        model(**batch, labels=torch.tensor([1, 0, 1])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        adapted = model(**batch).logits
    saved = save_model_folder(model, tokenizer, tmp_path / "out")
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()
    reloaded = AutoModelForSequenceClassification.from_pretrained(saved).eval()
    assert not any(f"{method}_" in name for name, _ in reloaded.named_parameters())  # plain transformers weights
    with torch.no_grad():
        again = reloaded(**batch).logits
    assert torch.allclose(adapted, again, atol=1e-4)
    base = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        assert not torch.allclose(base(**batch).logits, again, atol=1e-3)  # training changed what it predicts


def test_adapter_targets_are_the_projections_of_known_architectures():
    assert lora_targets("bert", None) == ["query", "key", "value", "dense"]
    assert lora_targets("gemma3_text", None)[:3] == ["q_proj", "k_proj", "v_proj"]
    assert lora_targets("unknown-arch", None) == "all-linear"
    assert lora_targets("bert", ("query",)) == ["query"]
