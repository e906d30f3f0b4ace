"""`playground train`'s recipe flags, one per spec field: --preset, every training knob, and the --search-* block.

Made from the spec's fields (kind, bounds, help text), so a new knob needs no edit here.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.params import Knob, SearchSpec, TrainingParams, knob
from engine.presets import PRESETS

SEARCH_PREFIX = "search_"


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _add(parser: argparse.ArgumentParser, spec_knob: Knob, dest: str, help_text: str, default: Any) -> None:
    shown = f"{help_text} (default {default})" if default not in (None, ()) else help_text
    if spec_knob.kind == "number":
        parser.add_argument(_flag(dest), dest=dest, type=spec_knob.number, help=shown)
    elif spec_knob.kind == "choice":
        parser.add_argument(_flag(dest), dest=dest, choices=spec_knob.choices, help=shown)
    elif spec_knob.kind == "switch":
        parser.add_argument(_flag(dest), dest=dest, action=argparse.BooleanOptionalAction, default=None, help=shown)
    else:  # lists are comma-separated; text is read by the field's own validator
        parser.add_argument(_flag(dest), dest=dest, type=spec_knob.parse, help=shown)


def add_recipe_flags(parser: argparse.ArgumentParser) -> None:
    """--preset, a flag per TrainingParams field and --search-* per SearchSpec field."""
    presets = "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values())
    parser.add_argument("--preset", choices=list(PRESETS), help=f"start from a preset, flags override it. {presets}")
    recipe = parser.add_argument_group("training recipe")
    for name, field in TrainingParams.model_fields.items():
        _add(recipe, knob(TrainingParams, name), name, field.description or "", field.default)
    search = parser.add_argument_group("learning-rate search (any --search-* flag turns it on)")
    search.add_argument("--search", action="store_true", help="run a search with the defaults below")
    for name, field in SearchSpec.model_fields.items():
        _add(search, knob(SearchSpec, name), SEARCH_PREFIX + name, field.description or "", field.default)


def params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainingParams fields given on the command line."""
    given = {name: getattr(args, name, None) for name in TrainingParams.model_fields}
    return {name: value for name, value in given.items() if value is not None}


def search_from_args(args: argparse.Namespace) -> dict[str, Any] | None:
    """The search block the --search-* flags ask for, or None when none was given."""
    given = {name: getattr(args, SEARCH_PREFIX + name, None) for name in SearchSpec.model_fields}
    given = {name: value for name, value in given.items() if value is not None}
    return given if given or getattr(args, "search", False) else None
