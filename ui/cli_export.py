"""`playground export SOURCE --to VARIANT`: a deployable variant of a finished model, as a job or here and now.

Wired into ui/cli.py with `add_export_command(sub)`. Without --output the export is queued like training (SOURCE a
job id or prefix, or a model folder) and followed with --wait; with --output it runs in this process.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.export import VARIANTS
from engine.spec import ExportSpec


def add_export_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `export` on the CLI's sub-parsers."""
    export = subparsers.add_parser(
        "export", help="make a bf16, int8, ONNX or pruned variant of a finished model and measure it on its test split"
    )
    export.add_argument("source", help="a finished training job's id (or a unique prefix), or its model/ folder")
    export.add_argument("--to", choices=VARIANTS, required=True, help=ExportSpec.model_fields["to"].description)
    export.add_argument("--sparsity", type=float, help=ExportSpec.model_fields["sparsity"].description)
    export.add_argument("--prune", choices=["weights", "heads"], help=ExportSpec.model_fields["prune"].description)
    export.add_argument("--output", type=Path, help="run here and write model/ and report.json/.md into this folder")
    export.add_argument("--owner", help="queued: who the job belongs to (default PLAYGROUND_OWNER or your user name)")
    export.add_argument("--wait", action="store_true", help="queued: follow the job; exit 0 only if it succeeded")
    export.add_argument("--json", action="store_true", help="print the report (or the job record) as JSON")
    export.set_defaults(handler=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    folder = _model_folder(Path(args.source).expanduser())
    raw = {"model": str(folder) if folder else args.source, "to": args.to}
    raw.update({name: getattr(args, name) for name in ("sparsity", "prune") if getattr(args, name) is not None})
    spec = ExportSpec.from_dict(raw, source="export flags")  # flag errors first, before torch takes seconds to load
    if args.output is not None:
        return _export_here(spec, args.output, as_json=args.json)
    from ui.cli_jobs import after_submit, default_owner
    from worker import api

    if folder is None:
        spec = spec.model_copy(update={"model": api.resolve(args.source)})
    return after_submit(api.submit(spec, args.owner or default_owner()), wait=args.wait, as_json=args.json)


def _model_folder(path: Path) -> Path | None:
    # A training output folder holds model/; a model folder holds config.json; anything else is a job id.
    if (path / "model" / "config.json").is_file():
        return (path / "model").resolve()
    if (path / "config.json").is_file():
        return path.resolve()
    if path.exists():
        raise ValueError(f"{path} is not a model folder (no config.json in it or in {path / 'model'})")
    return None


def _export_here(spec: ExportSpec, output: Path, *, as_json: bool) -> int:
    from engine.export import export_model
    from engine.export.report import rows

    if (output / "model").exists():
        raise ValueError(f"{output} already holds an exported model; choose another --output folder or delete it")
    report = export_model(spec.model, spec.to, output, sparsity=spec.sparsity, prune=spec.prune)
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    for row in rows(report):
        print("  ".join(f"{key}: {value}" for key, value in row.items()))
    print(f"\nwrote {output.resolve()}/{{model/, report.json, report.md}}")
    return 0
