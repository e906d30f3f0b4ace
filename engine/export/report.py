"""The export report in markdown: the variant beside the original, and what the change costs and saves."""

from __future__ import annotations

from typing import Any

from engine.markdown import table

HOW_TO_READ = (
    "Both rows were measured in the same process, one after the other, on the job's own test split: *size* is the "
    "folder on disk, *p50 latency* the median time for one text, *throughput* texts per second in batches. The "
    "original runs in fp32, as it was saved."
)


def rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The original and the variant as table rows (name, precision, size, latency, throughput, metrics)."""
    return [_row("original", report["original"]), _row(report["variant"]["name"], report["exported"])]


def _row(name: str, measured: dict[str, Any]) -> dict[str, Any]:
    row = {
        "variant": name,
        "runs in": measured["precision"],
        "size (MB)": measured["size_mb"],
        "p50 latency (ms)": measured["latency_p50_ms"],
        "texts/s": measured["texts_per_second"],
    }
    for metric, value in measured["metrics"].items():
        change = measured.get("metric_change", {}).get(metric)
        row[metric] = f"{value:.4f}" if change is None else f"{value:.4f} ({change * 100:+.1f} pts)"
    return row


def _table(entries: list[dict[str, Any]]) -> list[str]:
    header = list(entries[0])
    return table(header, [[str(entry.get(name, "")) for name in header] for entry in entries])


def render(report: dict[str, Any]) -> str:
    """Markdown: a headline sentence, the two-row table and how the variant was made."""
    variant, exported = report["variant"], report["exported"]
    headline = report["headline_metric"]
    change = exported["metric_change"].get(headline, 0.0) * 100
    lines = [
        f"# Export: {variant['name']} variant of a {report['task']} model",
        "",
        f"The {variant['name']} variant is {exported['size_ratio']:.2f}x the original's size and runs batches "
        f"{exported['speedup']:.2f}x as fast; its {headline} on {report['test_rows']} test rows moved by "
        f"{change:+.1f} points.",
        "",
        *_table(rows(report)),
        "",
        HOW_TO_READ,
        "",
        f"Runtime: **{variant['runtime']}**. Source model: `{variant['source']}`.",
    ]
    if variant["name"] == "pruned" and variant.get("prune") == "heads":
        removed = ", ".join(f"layer {layer}: {heads}" for layer, heads in variant["pruned_heads"].items())
        lines += [
            "",
            f"{variant['zero_share'] * 100:.1f}% of the attention heads add nothing now (their query, key, value and "
            f"output weights are zero; heads removed by layer: {removed}). The shapes stay, so the folder is as large "
            "and as fast as before; plain transformers loads it.",
        ]
    elif variant["name"] == "pruned":
        lines += [
            "",
            f"{variant['zero_share'] * 100:.1f}% of the weights of {variant['pruned_layers']} Linear layers are zero "
            "(global magnitude pruning); the folder is as large as before, since safetensors stores zeros too, and "
            "speed changes only with a sparse runtime.",
        ]
    return "\n".join(lines) + "\n"


def compression_table(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant from its export reports (newest first), after the original as its newest run measured it.

    Each variant's speed-up is against the original timed in its own run, so a busy machine slows both sides alike.
    """
    if not reports:
        return []
    table_rows = [_table_row("original", reports[0]["original"], None)]
    for report in reports:
        table_rows.append(_table_row(report["variant"]["name"], report["exported"], report["variant"]))
    return table_rows


def _pruned_name(variant: dict[str, Any]) -> str:
    heads = " of heads" if variant.get("prune") == "heads" else ""
    return f"pruned {variant.get('sparsity', 0):.0%}{heads}"


def _table_row(name: str, measured: dict[str, Any], variant: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "variant": name if not variant or name != "pruned" else _pruned_name(variant),
        "runtime": variant["runtime"] if variant else "transformers",
        "runs in": measured["precision"],
        "size_mb": measured["size_mb"],
        "latency_p50_ms": measured["latency_p50_ms"],
        "texts_per_second": measured["texts_per_second"],
        "speedup": measured.get("speedup", 1.0),
        "metrics": measured["metrics"],
        "metric_change": measured.get("metric_change", {}),
    }
