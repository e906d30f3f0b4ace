"""The chunked chat loss: the model's own loss and gradients without its logits, inside the Trainer (adversarial
training too), bf16 frozen weights under LoRA, and the report's batched, seeded generations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
)

from engine.catalog import resolve_model
from engine.fit import _trainer
from engine.spec import JobSpec
from engine.tasks.chat.data import tokenize_conversation
from engine.tasks.chat.generation import generate_replies, generate_reply, mean_token_loss
from engine.tasks.chat.loss import chunked_loss, decoder_parts, token_loss_sum
from engine.tasks.chat.recipe import Chat
from engine.techniques.adversarial import AdversarialTrainer

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "chat" / "support.jsonl"
pytestmark = pytest.mark.slow
CONVERSATIONS = [
    [
        {"role": "user", "content": "How do I export my notes?"},
        {"role": "assistant", "content": "Hi there! Open Settings, then Export. — Ava from Support"},
    ],
    [
        {"role": "system", "content": "You answer for Quillmate support."},
        {"role": "user", "content": "My sync stopped."},
        {"role": "assistant", "content": "Sorry about that! Sign out and in again."},
        {"role": "user", "content": "Still broken, and the app is slow too."},
        {"role": "assistant", "content": "Then rebuild the search index under Settings > Advanced."},
    ],
]
PROMPTS = [
    [{"role": "user", "content": "Can I sync across devices?"}],
    [{"role": "user", "content": "What does Quillmate Plus cost, and can I pay yearly instead of monthly?"}],
    [{"role": "user", "content": "Hi"}],
]


def _spec(**params) -> JobSpec:
    return JobSpec.from_dict({"task": "chat", "data": {"train": str(FIXTURE)}, "params": params})


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))


@pytest.fixture(scope="module")
def smollm():
    return AutoModelForCausalLM.from_pretrained(resolve_model("smollm2-135m-instruct"), dtype=torch.float32)


def _batch(tokenizer, max_length: int = 96) -> dict[str, torch.Tensor]:
    rows = [tokenize_conversation(tokenizer, c, max_length=max_length) for c in CONVERSATIONS]
    return dict(DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)(rows))


def _own_and_chunked(model, batch: dict, chunk: int) -> tuple[torch.Tensor, dict, torch.Tensor, dict]:
    model.zero_grad()
    own = model(**batch).loss
    own.backward()
    own_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    mine = chunked_loss(model, batch, chunk=chunk)
    mine.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return own, own_grads, mine, grads


def test_the_chunked_loss_and_its_gradients_equal_the_models_own(smollm, tokenizer):
    batch = _batch(tokenizer)
    smollm.train()
    own, own_grads, mine, grads = _own_and_chunked(smollm, batch, chunk=7)  # a chunk size that leaves a remainder
    assert float(mine) == pytest.approx(float(own), abs=1e-4)
    assert own_grads.keys() == grads.keys() and own_grads
    for name, grad in own_grads.items():
        # Relative to the whole gradient: the chunks sum in another order, so single elements differ by ~1e-4.
        assert float((grads[name] - grad).norm() / grad.norm().clamp_min(1e-12)) < 1e-3, name
    # Given the Trainer's count of every accumulated batch's tokens, the sum is divided by that instead.
    total, count = token_loss_sum(smollm, batch)
    assert count == int((batch["labels"][:, 1:] != -100).sum())
    assert float(chunked_loss(smollm, batch, 2 * count)) == pytest.approx(float(total) / (2 * count), rel=1e-5)
    smollm.eval()


def test_gemma_softcapping_and_a_peft_wrapper_are_looked_through():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        final_logit_softcapping=3.0,  # small, so the cap changes the loss a lot if it were left out
        sliding_window=8,
    )
    gemma = Gemma3ForCausalLM(config)
    with torch.no_grad():
        gemma.lm_head.weight.mul_(30)  # logits well beyond the cap, so leaving it out would show
    model = get_peft_model(gemma, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert decoder_parts(model).softcap == 3.0
    ids = torch.randint(3, 300, (2, 20))
    labels = ids.clone()
    labels[:, :6] = -100
    labels[1, 15:] = -100
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    own, own_grads, mine, grads = _own_and_chunked(model, batch, chunk=5)
    assert float(mine) == pytest.approx(float(own), abs=1e-4)
    gemma.config.final_logit_softcapping = None
    assert abs(float(model(**batch).loss) - float(own)) > 0.1
    gemma.config.final_logit_softcapping = 3.0
    assert own_grads.keys() == grads.keys() and all("lora_" in n for n in grads)
    for name, grad in own_grads.items():
        assert torch.allclose(grads[name], grad, atol=1e-6, rtol=1e-3), name


def _hooked_trainer(tmp_path: Path, tokenizer, **extra):
    recipe = Chat()
    small = tmp_path / "small.jsonl"
    small.write_text("".join(FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)[:20]), encoding="utf-8")
    spec = JobSpec.from_dict(
        {
            "task": "chat",
            "data": {"train": str(small), "validation_fraction": 0.1, "test_fraction": 0.1},
            "params": {"epochs": 1, "batch_size": 4, "max_length": 160, "precision": "bf16"},
            **extra,
        }
    )
    prepared = recipe.prepare(spec, tokenizer)
    model_init = lambda: recipe.build_model(spec, resolve_model("smollm2-135m-instruct"), [])  # noqa: E731
    trainer = _trainer(spec, recipe, prepared, tokenizer, model_init, tmp_path, "bf16", [])
    seen: list[tuple[int, ...]] = []
    head = decoder_parts(trainer.model).head
    head.register_forward_hook(lambda module, args, output: seen.append(tuple(args[0].shape)))
    return trainer, prepared, seen


def test_a_training_step_sends_only_assistant_positions_through_the_lm_head(tmp_path, tokenizer):
    trainer, prepared, seen = _hooked_trainer(tmp_path, tokenizer)
    assert trainer.args.prediction_loss_only
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()
    count = trainer._get_num_items_in_batch([batch], trainer.args.device)  # as the training loop passes it
    loss = trainer.training_step(trainer.model, batch, count)
    assert torch.isfinite(loss)
    assert seen and all(len(shape) == 2 for shape in seen)  # (positions, width): never (batch, seq, vocab)
    # The checkpointed chunks run twice (forward, then again in backward): each pass covers the label tokens.
    assert sum(shape[0] for shape in seen) == 2 * int((batch["labels"][:, 1:] != -100).sum())
    seen.clear()
    metrics = trainer.evaluate()
    assert metrics["eval_loss"] > 0 and seen and all(len(shape) == 2 for shape in seen)


def test_the_recipes_loss_also_drives_adversarial_training(tmp_path, tokenizer):
    trainer, _, seen = _hooked_trainer(tmp_path, tokenizer, techniques={"adversarial": {"method": "fgm"}})
    assert isinstance(trainer, AdversarialTrainer)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()
    count = trainer._get_num_items_in_batch([batch], trainer.args.device)
    assert torch.isfinite(trainer.training_step(trainer.model, batch, count))
    assert seen and all(len(shape) == 2 for shape in seen)


def test_lora_keeps_bf16_base_weights_and_fp32_adapters_trains_and_saves(tokenizer, tmp_path):
    recipe = Chat()
    torch.manual_seed(0)
    model = recipe.build_model(_spec(precision="bf16"), resolve_model("smollm2-135m-instruct"), [])
    dtypes = {(p.requires_grad, p.dtype) for p in model.parameters()}
    assert dtypes == {(False, torch.bfloat16), (True, torch.float32)}
    batch = {k: v for k, v in _batch(tokenizer).items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    losses = []
    for _ in range(4):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = recipe.compute_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    model_dir = recipe.save(model, tokenizer, tmp_path)
    merged = AutoModelForCausalLM.from_pretrained(model_dir)
    assert {p.dtype for p in merged.parameters()} == {torch.float32}
    collate = recipe.collator(tokenizer, None)
    rows = [tokenize_conversation(tokenizer, c, max_length=96) for c in CONVERSATIONS]
    assert mean_token_loss(merged, collate, rows) == pytest.approx(mean_token_loss(model, collate, rows), abs=0.05)
    full = recipe.build_model(_spec(precision="bf16", method="full"), resolve_model("smollm2-135m-instruct"), [])
    assert {p.dtype for p in full.parameters()} == {torch.float32}  # full fine-tuning keeps fp32 master weights


def test_batched_generation_gives_the_one_by_one_greedy_replies(smollm, tokenizer):
    batched = generate_replies(smollm, tokenizer, PROMPTS, max_new_tokens=24)
    alone = [generate_reply(smollm, tokenizer, prompt, max_new_tokens=24) for prompt in PROMPTS]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert [r.new_tokens for r in batched] == [r.new_tokens for r in alone]


def test_seeded_sampling_repeats_and_the_seed_matters(smollm, tokenizer):
    def sample(seed: int) -> list[str]:
        replies = generate_replies(smollm, tokenizer, PROMPTS, max_new_tokens=24, temperature=1.0, seed=seed)
        return [r.text for r in replies]

    first = sample(3)
    assert sample(3) == first
    assert sample(4) != first


def test_checkpointing_turns_on_by_itself_when_the_estimate_does_not_fit(monkeypatch):
    import engine.tasks.chat.recipe as recipe_module

    recipe = Chat()
    path = resolve_model("smollm2-135m-instruct")
    monkeypatch.setattr(recipe_module, "available_bytes", lambda device: 64.0 * 1024**3)
    assert recipe.build_model(_spec(), path, []).base_model.model.is_activation_checkpointing is False
    assert recipe.checkpointing is None  # a machine with room for the default job keeps every activation
    monkeypatch.setattr(recipe_module, "available_bytes", lambda device: 1.0 * 1024**3)
    model = recipe.build_model(_spec(), path, [])
    assert model.base_model.model.is_activation_checkpointing
    assert recipe.checkpointing.startswith("on, automatically") and "1.0 GB free" in recipe.checkpointing
