"""What differs between tasks (data, model head, metrics, report) behind one interface that `train` drives."""

from __future__ import annotations

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


__all__ = ["Prepared", "TaskRecipe", "recipe_for"]
