"""What the edges say about a job's techniques: each technique's spec model, the ones a spec turns on, and the few
words the job list calls them by. Plain data in, plain data out (no Gradio), for the CLI, the tabs and the views."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from engine.techniques import TECHNIQUES, Techniques

# How the job list names a technique in a line that also holds the model, the file and a score.
SHORT_WORDS = {
    "augment": "augmentation",
    "adversarial": "adversarial",
    "ensemble": "ensemble",
    "domain_pretraining": "domain pre-training",
    "self_training": "self-training",
}
# The techniques that read data.unlabeled; the upload of unlabeled texts is for them.
READS_UNLABELED = ("domain_pretraining", "self_training")


def technique_model(name: str) -> type[BaseModel]:
    """The spec model of technique `name` (AugmentSpec for 'augment'), read from the Techniques field's type."""
    annotation = Techniques.model_fields[name].annotation
    return next(arg for arg in typing.get_args(annotation) if arg is not type(None))


def used_in(spec: dict[str, Any] | None) -> list[str]:
    """The names of the techniques a job spec (as a plain dict) turns on, in TECHNIQUES order."""
    block = (spec or {}).get("techniques")
    if not isinstance(block, dict):
        return []
    return [name for name in TECHNIQUES if block.get(name) is not None]


def short_words(names: list[str]) -> str:
    """'augmentation + adversarial': the techniques as the job list names them."""
    return " + ".join(SHORT_WORDS.get(name, TECHNIQUES.get(name, name).lower()) for name in names)


def signed(value: float) -> str:
    """A difference with its sign and 3 decimals: '+0.040', '-0.013', '+0.000' (never '-0.000')."""
    return f"{round(float(value), 3) + 0.0:+.3f}"
