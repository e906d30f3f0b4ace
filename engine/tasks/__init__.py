"""The task registry: the one place that maps a task name to what it is. Every edge asks here, none branches on names.

A new task is a package `engine/tasks/<task>/` exposing a `Task`, and one `register()` line below.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.tasks.base import Column, Prepared, ReportView, Task, TrainingRecipe

if TYPE_CHECKING:
    import pandas as pd

    from engine.spec import JobSpec

_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Make `task` known to the spec, the CLI, the web app and the worker (a later task of the same name wins)."""
    _REGISTRY[task.name] = task
    return task


def unregister(name: str) -> None:
    """Forget a task (tests that register a toy task clean up with this)."""
    _REGISTRY.pop(name, None)


def task_names() -> list[str]:
    """Every registered task name, in registration order."""
    return list(_REGISTRY)


def all_tasks() -> list[Task]:
    """Every registered task, in registration order."""
    return list(_REGISTRY.values())


def get_task(name: str | None) -> Task:
    """The task called `name`; ValueError naming the known tasks otherwise."""
    try:
        return _REGISTRY[str(name)]
    except KeyError:
        known = ", ".join(f"'{n}'" for n in _REGISTRY)
        raise ValueError(f"unknown task {name!r}; tasks are {known}") from None


def default_task() -> Task:
    """The task a job has when it names none (the first registered)."""
    return next(iter(_REGISTRY.values()))


def recipe_for(task: str) -> TrainingRecipe:
    """The training recipe of `task`."""
    return get_task(task).recipe()


def task_of_model(config: dict[str, Any]) -> Task:
    """The task a fine-tuned model folder serves, from the architectures in its config.json."""
    architectures = config.get("architectures") or []
    for task in _REGISTRY.values():
        if any(arch.endswith(task.model_architectures) for arch in architectures if task.model_architectures):
            return task
    return default_task()


def tasks_for_architecture(architecture: str) -> list[str]:
    """The tasks a pretrained model of this kind ('encoder' or 'causal-lm') can be fine-tuned for."""
    return [task.name for task in _REGISTRY.values() if task.architecture == architecture]


def detect_task(path: str | Path, frame: pd.DataFrame | None = None) -> str:
    """The task a data file is most likely for, from its suffix and (when given) its parsed columns."""
    path = Path(path)
    scores = {task.name: task.detect(path, frame) for task in _REGISTRY.values()}
    best = max(scores, key=scores.__getitem__)
    return best if scores[best] > 0 else default_task().name


def own_format_suffixes() -> tuple[str, ...]:
    """File suffixes in a task's own format (CoNLL: a token and its tag per line), never read as tables."""
    return tuple(suffix for task in _REGISTRY.values() for suffix in task.file_suffixes)


def file_format_of(path: str | Path, table_format: str | None = None) -> str | None:
    """The DataSpec format of a file: a task's own format by suffix, else the format its table was read as."""
    suffix = Path(path).suffix.lower()
    own = next((task.file_format for task in _REGISTRY.values() if suffix in task.file_suffixes), None)
    return own or table_format


def inspect_job_data(spec: JobSpec) -> dict:
    """The validation summary for a job's data, counted with its base model's tokenizer, before any training."""
    from transformers import AutoTokenizer

    from engine.catalog import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(spec.base_model, task=spec.task))
    from engine.language import advise

    params = spec.params
    summary = get_task(spec.task).inspect(
        spec.data, tokenizer=tokenizer, max_length=params.max_length, seed=params.seed
    )
    advise(summary, spec.task, spec.base_model)
    return summary


# The built-in tasks; the first is the default of a spec that names none.
from engine.tasks.chat import CHAT  # noqa: E402
from engine.tasks.text_classification import TEXT_CLASSIFICATION  # noqa: E402
from engine.tasks.token_classification import TOKEN_CLASSIFICATION  # noqa: E402

register(TEXT_CLASSIFICATION)
register(TOKEN_CLASSIFICATION)
register(CHAT)

__all__ = [
    "Column",
    "Prepared",
    "ReportView",
    "Task",
    "TrainingRecipe",
    "all_tasks",
    "file_format_of",
    "own_format_suffixes",
    "default_task",
    "detect_task",
    "get_task",
    "inspect_job_data",
    "recipe_for",
    "register",
    "task_names",
    "task_of_model",
    "tasks_for_architecture",
    "unregister",
]
