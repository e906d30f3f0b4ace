"""The model catalog: resolving names, folders and hub ids; listing; the one-time GGUF conversion."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest

from engine import catalog, packaged
from engine.catalog import (
    CATALOG,
    count_parameters,
    format_models_table,
    list_models,
    model_tasks,
    resolve_model,
)
from engine.errors import ModelNotFoundError

SMOLLM2 = "smollm2-135m-instruct"
GEMMA = "gemma3-270m"


@pytest.fixture(autouse=True)
def private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "model-cache"
    monkeypatch.setenv("PLAYGROUND_MODEL_CACHE", str(cache))
    return cache


@pytest.fixture
def minilm_config(tmp_path: Path) -> Path:
    folder = tmp_path / "my-encoder"
    folder.mkdir()
    shutil.copy(Path(resolve_model("minilm-l6")) / "config.json", folder / "config.json")
    return folder


def _write_config(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def test_minilm_resolves_to_a_loadable_folder_of_about_22_7m_parameters() -> None:
    from transformers import AutoConfig

    folder = Path(resolve_model("minilm-l6", task="text-classification"))

    assert (folder / "config.json").is_file()
    config = AutoConfig.from_pretrained(folder)
    assert config.model_type == "bert"
    assert config.num_hidden_layers == 6
    assert 22_000_000 <= count_parameters(folder) <= 23_500_000
    # The catalog's advertised size is what the weights really hold.
    assert count_parameters(folder) == CATALOG["minilm-l6"].parameters


def test_unknown_name_lists_the_catalog_names() -> None:
    with pytest.raises(ModelNotFoundError, match=r"'no-such-model' is not a catalog name \(minilm-l6, smollm2-135m"):
        resolve_model("no-such-model")


def test_hub_id_while_offline_says_so_and_what_to_use_instead() -> None:
    with pytest.raises(
        ModelNotFoundError, match=r"'someone/some-model'.*offline.*local model folder or a catalog name"
    ):
        resolve_model("someone/some-model")


def test_transformers_offline_also_counts_as_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="offline"):
        resolve_model("someone/some-model")


def test_hub_id_while_online_is_passed_through_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing is downloaded: resolve_model only decides that the hub is where this name lives.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert resolve_model("someone/some-model", task="chat") == "someone/some-model"
    with pytest.raises(ModelNotFoundError, match="not a catalog name"):
        resolve_model("not/a/hub/id")


def test_local_folder_resolves_to_itself_with_tasks_from_its_config(minilm_config: Path) -> None:
    assert resolve_model(str(minilm_config), task="token-classification") == str(minilm_config.resolve())
    assert model_tasks(str(minilm_config)) == ["text-classification", "token-classification"]
    with pytest.raises(ModelNotFoundError, match=r"supports text-classification, token-classification, not 'chat'"):
        resolve_model(str(minilm_config), task="chat")


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        resolve_model(str(tmp_path))


def test_catalog_task_mismatch_names_the_supported_tasks() -> None:
    with pytest.raises(ModelNotFoundError, match=r"'minilm-l6' supports text-classification, token-classification"):
        resolve_model("minilm-l6", task="chat")
    # Refused before any conversion is attempted.
    with pytest.raises(ModelNotFoundError, match=r"'smollm2-135m-instruct' supports chat, not 'text-classification'"):
        resolve_model(SMOLLM2, task="text-classification")
    assert not packaged.converted_folder(SMOLLM2).exists()


def test_unknown_task_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"unknown task 'summarize'; tasks are 'text-classification'"):
        resolve_model("minilm-l6", task="summarize")


@pytest.mark.parametrize(
    ("config", "tasks"),
    [
        ({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, ["chat"]),
        ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, ["chat"]),
        ({"model_type": "qwen2"}, ["chat"]),
        (
            {"model_type": "roberta", "architectures": ["RobertaForSequenceClassification"]},
            ["text-classification", "token-classification"],
        ),
        ({"model_type": "deberta-v2"}, ["text-classification", "token-classification"]),
        ({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]}, []),
    ],
)
def test_tasks_are_derived_from_config(tmp_path: Path, config: dict, tasks: list[str]) -> None:
    assert model_tasks(str(_write_config(tmp_path / "model", config))) == tasks


def test_model_that_supports_no_task_says_why(tmp_path: Path) -> None:
    folder = _write_config(tmp_path / "t5", {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]})
    with pytest.raises(ModelNotFoundError, match="neither an encoder .* nor a causal language model"):
        resolve_model(str(folder), task="text-classification")


def test_list_models_reports_the_packaged_models_as_offline() -> None:
    rows = {row["name"]: row for row in list_models()}

    assert set(rows) == {"minilm-l6", SMOLLM2, GEMMA}
    gemma = rows[GEMMA]
    assert gemma["tasks"] == ["text-classification", "token-classification", "chat"]
    assert gemma["available_offline"] and gemma["converted"] is False and gemma["languages"] == "multilingual"
    # Not converted yet: the size is the four GGUF chunks' together (241 MB).
    assert 230 * 2**20 < gemma["disk_bytes"] < 250 * 2**20
    assert "Gemma Terms of Use" in gemma["terms"]
    minilm, smollm2 = rows["minilm-l6"], rows[SMOLLM2]
    assert minilm["tasks"] == ["text-classification", "token-classification"]
    assert smollm2["tasks"] == ["chat"]
    assert minilm["available_offline"] and smollm2["available_offline"]
    assert minilm["converted"] is None
    assert minilm["path"] == resolve_model("minilm-l6")
    assert 85 * 2**20 < minilm["disk_bytes"] < 95 * 2**20
    # Not converted in this private cache: the size is the GGUF file's.
    assert smollm2["converted"] is False
    assert smollm2["path"] is None
    assert 90 * 2**20 < smollm2["disk_bytes"] < 100 * 2**20


def test_models_table_is_aligned_and_readable() -> None:
    lines = format_models_table(list_models()).splitlines()

    assert lines[0].split() == ["NAME", "TASKS", "PARAMS", "DISK", "OFFLINE", "NOTE"]
    minilm = next(line for line in lines if line.startswith("minilm-l6 "))
    smollm2 = next(line for line in lines if line.startswith(SMOLLM2))
    assert "22.7M" in minilm and "87 MB" in minilm and " yes" in minilm
    assert (
        "134.5M" in smollm2
        and f"converted on first use (~{catalog.CATALOG[SMOLLM2].weights.conversion_seconds} s)" in smollm2
    )
    assert lines[-1] == f"{GEMMA}: its use is under the {catalog.GEMMA_TERMS}."
    # Every column starts at the same offset on every line.
    assert lines[0].index("PARAMS") == minilm.index("22.7M") == smollm2.index("134.5M")


def test_half_written_cache_folder_is_not_taken_for_a_converted_model(private_cache: Path) -> None:
    _write_config(private_cache / SMOLLM2, {"model_type": "llama"})
    row = next(row for row in list_models() if row["name"] == SMOLLM2)
    assert row["converted"] is False
    assert row["path"] is None


def _fake_conversion(calls: list[Path], *, delay: float = 0.0, fail: bool = False):
    def convert(gguf: Path, out_dir: Path) -> None:
        calls.append(out_dir)
        (out_dir / "config.json").write_text("{}", encoding="utf-8")
        time.sleep(delay)
        if fail:
            raise RuntimeError("conversion interrupted")

    return convert


def test_concurrent_first_uses_convert_once(monkeypatch: pytest.MonkeyPatch, private_cache: Path) -> None:
    # A stale half-written folder from a crashed run must be replaced, not trusted.
    stale = _write_config(private_cache / SMOLLM2, {"model_type": "llama"})
    (stale / "leftover.bin").write_bytes(b"x")
    calls: list[Path] = []
    monkeypatch.setattr(packaged, "convert_gguf", _fake_conversion(calls, delay=0.5))
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(resolve_model(SMOLLM2))) for _ in range(3)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(calls) == 1
    assert results == [str(private_cache / SMOLLM2)] * 3
    assert not (stale / "leftover.bin").exists()
    assert (stale / packaged.DONE_MARKER).is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(stale.stat().st_mode) == 0o777 & ~umask, "the cache folder must follow the umask"
    assert [p.name for p in private_cache.iterdir() if p.name.endswith(".partial")] == []


def test_failed_conversion_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, private_cache: Path) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(packaged, "convert_gguf", _fake_conversion(calls, fail=True))

    with pytest.raises(RuntimeError, match="conversion interrupted"):
        resolve_model(SMOLLM2)

    assert len(calls) == 1 and not calls[0].exists()
    assert not (private_cache / SMOLLM2).exists()
    assert next(row for row in list_models() if row["name"] == SMOLLM2)["converted"] is False


def test_unwritable_cache_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("PLAYGROUND_MODEL_CACHE", str(blocker / "models"))
    with pytest.raises(ModelNotFoundError, match="set PLAYGROUND_MODEL_CACHE to a writable folder"):
        resolve_model(SMOLLM2)


def test_count_parameters_needs_safetensors(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="has no model.safetensors"):
        count_parameters(tmp_path)


@pytest.mark.slow
def test_smollm2_is_converted_once_into_a_plain_chat_model(
    monkeypatch: pytest.MonkeyPatch, private_cache: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    folder = Path(resolve_model(SMOLLM2, task="chat"))
    conversion_seconds = time.monotonic() - started

    assert folder == private_cache / SMOLLM2
    assert (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"
    assert 134_000_000 <= count_parameters(folder) <= 135_000_000
    size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    print(f"\nsmollm2 conversion: {conversion_seconds:.1f} s, folder {size_mb:.0f} MB")

    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.model_max_length == config["max_position_embeddings"] == 8192
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.dtype == torch.float32
    assert getattr(model, "hf_quantizer", None) is None
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert tokenizer.decode(prompt["input_ids"][0]).endswith("<|im_start|>assistant\n")
    with torch.no_grad():
        output = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    reply = tokenizer.decode(output[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert reply.strip(), f"empty reply {reply!r}"
    assert "paris" in reply.lower()

    # Second use: no conversion, same folder, fast.
    monkeypatch.setattr(packaged, "convert_gguf", lambda *_: pytest.fail("converted a second time"))
    started = time.monotonic()
    assert resolve_model(SMOLLM2) == str(folder)
    assert time.monotonic() - started < 1.0
    row = next(row for row in list_models() if row["name"] == SMOLLM2)
    assert row["converted"] is True and row["path"] == str(folder)
    assert row["disk_bytes"] > 500 * 2**20
