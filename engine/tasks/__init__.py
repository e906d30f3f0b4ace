"""What differs between tasks (data, model head, metrics, report) behind one interface that `train` drives."""

from __future__ import annotations

from engine.spec import JobSpec
from engine.tasks.base import Prepared, TaskRecipe


def recipe_for(task: str) -> TaskRecipe:
    """The recipe that trains and reports on `task`."""
    if task == "text-classification":
        from engine.tasks.text_classification import TextClassification

        return TextClassification()
    if task == "token-classification":
        from engine.tasks.token_classification import TokenClassification

        return TokenClassification()
    if task == "chat":
        from engine.tasks.chat import Chat

        return Chat()
    raise ValueError(f"unknown task {task!r}; tasks are 'text-classification', 'token-classification' and 'chat'")


def inspect_job_data(spec: JobSpec) -> dict:
    """The validation summary for a job's data, counted with its base model's tokenizer, before any training."""
    from transformers import AutoTokenizer

    from engine.catalog import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(spec.base_model, task=spec.task))
    return recipe_for(spec.task).inspect(spec, tokenizer)


__all__ = ["Prepared", "TaskRecipe", "inspect_job_data", "recipe_for"]
