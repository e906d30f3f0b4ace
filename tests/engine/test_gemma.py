"""Gemma 3 270M, the multilingual catalog model: converted once, reads Chinese, tags with our head, learns to chat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.catalog import count_parameters, resolve_model
from engine.packaged import converted_folder

GEMMA = "gemma3-270m"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma() -> Path:
    # The shared model cache: the conversion (about 1.5 min here) is paid once per machine, not once per run.
    return Path(resolve_model(GEMMA, task="token-classification"))


def test_gemma_is_converted_once_into_a_plain_multilingual_model(gemma: Path):
    from transformers import AutoTokenizer

    assert gemma == converted_folder(GEMMA)
    config = json.loads((gemma / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "gemma3_text" and "quantization_config" not in config
    assert 268_000_000 <= count_parameters(gemma) <= 268_200_000
    assert not list(gemma.parent.glob(f".{GEMMA}*")) or all(
        p.suffix == ".lock" for p in gemma.parent.glob(f".{GEMMA}*")
    )
    assert not list(gemma.parent.glob(".*.assembling"))  # the joined GGUF does not stay in the cache
    tokenizer = AutoTokenizer.from_pretrained(gemma)
    ids = tokenizer("这家店的衣服质量很好，物流也快，五星好评！東京タワー 서울 Ça coûte", add_special_tokens=False)[
        "input_ids"
    ]
    assert tokenizer.unk_token_id not in ids and len(ids) < 30
    assert resolve_model(GEMMA, task="text-classification") == str(gemma)  # second use: no conversion


def test_a_gemma_tagger_saves_with_its_head_code_and_loads_with_and_without_the_playground(gemma: Path, tmp_path):
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    import engine.heads.gemma3_token_classification  # noqa: F401  (registers the head)
    from engine.predict import Predictor
    from engine.tasks.base import save_model_folder

    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    # A small random Gemma 3 of the real shape's family: the point is the head, its saving and its loading.
    layer_types = AutoConfig.from_pretrained(gemma).layer_types[4:6]  # one sliding-window and one full layer
    config = AutoConfig.from_pretrained(
        gemma,
        num_hidden_layers=2,
        layer_types=layer_types,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_config(config)
    assert type(model).__name__ == "Gemma3TextForTokenClassification"
    folder = save_model_folder(model, AutoTokenizer.from_pretrained(gemma), tmp_path)
    saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert saved["architectures"] == ["Gemma3TextForTokenClassification"]
    assert saved["auto_map"]["AutoModelForTokenClassification"].endswith(".Gemma3TextForTokenClassification")
    assert (folder / "gemma3_token_classification.py").is_file()

    text = "李明住在北京，在清华大学工作。"
    predictor = Predictor(folder, precision="fp32")  # compared with plain transformers' fp32 load below
    assert predictor.task == "token-classification" and predictor.labels == labels
    for span in predictor.tag([text])[0]:
        assert text[span["start"] : span["end"]] == span["text"]
    ours = predictor.model(**predictor.tokenizer(text, return_tensors="pt")).logits
    # A plain transformers user, in a fresh interpreter without the playground, loads the same model.
    probe = (
        "import sys, torch; from transformers import AutoModelForTokenClassification, AutoTokenizer; "
        f"m = AutoModelForTokenClassification.from_pretrained({str(folder)!r}, trust_remote_code=True); "
        f"t = AutoTokenizer.from_pretrained({str(folder)!r}); "
        f"print(m(**t({text!r}, return_tensors='pt')).logits.flatten()[:5].tolist())"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    assert theirs == pytest.approx(ours.flatten()[:5].tolist(), abs=1e-4)


def test_the_base_model_gets_a_chat_template_in_its_own_turn_format_with_loss_on_the_answers(gemma: Path):
    from transformers import AutoTokenizer

    from engine.tasks.chat.tokens import ensure_chat_template, tokenize_conversation

    tokenizer = AutoTokenizer.from_pretrained(gemma)
    assert tokenizer.chat_template is None  # a base model: nothing to chat with until we add it
    assert ensure_chat_template(tokenizer) and not ensure_chat_template(tokenizer)
    assert tokenizer.eos_token == "<end_of_turn>"
    messages = [
        {"role": "system", "content": "你是网店的客服。"},
        {"role": "user", "content": "怎么退货？"},
        {"role": "assistant", "content": "在订单页点“退货”，选好原因就行。"},
        {"role": "user", "content": "多久到账？"},
        {"role": "assistant", "content": "三个工作日内。"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text.startswith(
        "<bos><start_of_turn>user\n你是网店的客服。\n\n怎么退货？<end_of_turn>\n<start_of_turn>model\n"
    )
    row = tokenize_conversation(tokenizer, messages, max_length=512)
    learned = tokenizer.decode([i for i, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100])
    assert learned == "在订单页点“退货”，选好原因就行。<end_of_turn>三个工作日内。<end_of_turn>"
