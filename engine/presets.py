"""Presets: named starting points that expand into the exact knobs and search they mean, before the user's own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """A named recipe: the knobs it sets and, for the slow one, the learning-rate search it runs."""

    name: str
    title: str
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)
    search_trials: int | None = None  # a search around the task's default learning rate, when set
    search_ensemble: int = 1  # how many of the best trials may answer together, for tasks that offer ensembles

    def expand(self, task_params: Mapping[str, Any], *, ensembles: bool = True) -> dict[str, Any]:
        """{"params": ..., "search": ...} for a task whose defaults are `task_params` (learning rate included);
        `ensembles`: whether the task offers them (chat does not: its search keeps the best trial alone)."""
        expanded: dict[str, Any] = {"params": dict(self.params)}
        if self.search_trials:
            rate = float(task_params.get("learning_rate", 1e-4))
            # Ten times either side of the default, on a log scale: the default itself is the first trial, so
            # the search can only find a rate that does better on the validation split.
            expanded["search"] = {
                "trials": self.search_trials,
                "learning_rate": (float(f"{rate / 10:.1e}"), min(float(f"{rate * 10:.1e}"), 1e-2)),
                "prune": True,
            }
            if ensembles and self.search_ensemble > 1:
                expanded["search"]["ensemble"] = self.search_ensemble
        return expanded


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "quick",
            "Quick look",
            "One epoch with the task's defaults: a first score in the least time.",
            {"epochs": 1},
        ),
        Preset(
            "balanced", "Balanced", "The task's defaults: a few epochs at a learning rate known to suit its model."
        ),
        Preset(
            "best",
            "Best quality",
            "A learning-rate search: 6 trials from a tenth to ten times the default rate, the default first, bad "
            "ones pruned; each trial up to 8 epochs with early stopping after 2 evaluations without gain and a "
            "cosine schedule. The best 3 complete trials answer together, bar any far behind the best "
            "(classification and tagging; chat keeps the best trial). Takes several times longer than the defaults, "
            "and an ensemble answers up to 3 times slower.",
            {"epochs": 8, "early_stopping_patience": 2, "schedule": "cosine", "warmup_ratio": 0.1},
            search_trials=6,
            search_ensemble=3,
        ),
    )
}
DEFAULT_PRESET = "balanced"


def preset_names() -> list[str]:
    """The preset names a spec accepts."""
    return list(PRESETS)


def expand_preset(name: str, task_params: Mapping[str, Any], *, ensembles: bool = True) -> dict[str, Any]:
    """The params and search of preset `name`; ValueError naming the presets for an unknown one."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].expand(task_params, ensembles=ensembles)
