"""`playground train`'s recipe flags, one per spec field: --preset, every training knob, the --search-* block and
the techniques (--augment, --augment-*, ..., --no-compare-with-plain).

Made from the spec's fields (kind, bounds, help text), so a new knob or technique field needs no edit here.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.params import Knob, SearchSpec, TrainingParams, knob
from engine.presets import PRESETS
from engine.techniques import TECHNIQUES, Techniques
from ui.techniques import technique_model

SEARCH_PREFIX = "search_"


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def add_flag(parser: argparse.ArgumentParser, spec_knob: Knob, dest: str, help_text: str, default: Any) -> None:
    """The flag --DEST for a spec field: typed by its knob, its help text the field's description."""
    if isinstance(default, tuple):  # as the flag takes it: comma-separated
        default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    shown = f"{help_text} (default {default})" if default not in (None, "") else help_text
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
        add_flag(recipe, knob(TrainingParams, name), name, field.description or "", field.default)
    search = parser.add_argument_group("learning-rate search (any --search-* flag turns it on)")
    search.add_argument("--search", action="store_true", help="run a search with the defaults below")
    for name, field in SearchSpec.model_fields.items():
        add_flag(search, knob(SearchSpec, name), SEARCH_PREFIX + name, field.description or "", field.default)


def params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainingParams fields given on the command line."""
    given = {name: getattr(args, name, None) for name in TrainingParams.model_fields}
    return {name: value for name, value in given.items() if value is not None}


def search_from_args(args: argparse.Namespace) -> dict[str, Any] | None:
    """The search block the --search-* flags ask for, or None when none was given."""
    given = {name: getattr(args, SEARCH_PREFIX + name, None) for name in SearchSpec.model_fields}
    given = {name: value for name, value in given.items() if value is not None}
    return given if given or getattr(args, "search", False) else None


def add_technique_flags(parser: argparse.ArgumentParser) -> None:
    """Per technique an on-switch (--augment) and a flag per field (--augment-copies), and --no-compare-with-plain."""
    field = Techniques.model_fields["compare_with_plain"]
    compare = parser.add_argument_group("techniques for little labeled data (see each technique's flags below)")
    add_flag(compare, knob(Techniques, "compare_with_plain"), "compare_with_plain", field.description or "", None)
    for name, title in TECHNIQUES.items():
        model = technique_model(name)
        group = parser.add_argument_group(f"{title.lower()} (any {_flag(name)}-* flag turns it on)")
        on_help = f"{Techniques.model_fields[name].description} Turns it on with the defaults below."
        group.add_argument(_flag(name), dest=name, action="store_true", help=on_help)
        for field_name, field in model.model_fields.items():
            add_flag(group, knob(model, field_name), f"{name}_{field_name}", field.description or "", field.default)


def techniques_from_args(args: argparse.Namespace, configured: dict[str, Any] | None) -> dict[str, Any] | None:
    """The techniques block: a --config's block (`configured`) with the technique flags merged over it; None when no
    technique is on."""
    block = dict(configured or {})
    for name in TECHNIQUES:
        given = {field: getattr(args, f"{name}_{field}", None) for field in technique_model(name).model_fields}
        given = {field: value for field, value in given.items() if value is not None}
        if given or getattr(args, name, False):
            block[name] = {**(block.get(name) or {}), **given}
    if getattr(args, "compare_with_plain", None) is not None:
        block["compare_with_plain"] = args.compare_with_plain
    return block if any(block.get(name) is not None for name in TECHNIQUES) else None
