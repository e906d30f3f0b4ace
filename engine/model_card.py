"""README.md model cards: the Hugging Face front matter (base model, licence, languages, the test results as a
model-index) and a body a stranger can read, made from a job's spec and report, in every model folder it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from engine.adapters import ADAPTER
from engine.card_facts import Facts, languages, model_index_metrics
from engine.card_recipe import data_section, training_section
from engine.card_sections import about as about_paragraph
from engine.card_sections import (
    evaluation_section,
    license_section,
    limitations_section,
    results_section,
    variant_section,
)
from engine.catalog import CATALOG, model_license
from engine.export.card import runtime_usage
from engine.files import write_atomically
from engine.spec import JobSpec
from engine.tasks import Task, get_task

CARD = "README.md"
PRODUCER_TAG = "finetune-playground"
CAUSAL_PIPELINE = "text-generation"
_PREDICTOR_CALLS = {
    "classify": 'print(model.classify(["Replace this with a text to label."]))',
    "tag": 'print(model.tag(["Replace this with a text to tag."]))',
    "chat": 'print(model.chat([{"role": "user", "content": "Hello, can you help me?"}]))',
}
_SNIPPETS = {
    "classify": """from transformers import pipeline

classifier = pipeline("{tag}", model={path}{remote})
print(classifier("Replace this with a text to label.", top_k=None))  # every label with its probability""",
    "tag": """from transformers import pipeline

tagger = pipeline("{tag}", model={path}, aggregation_strategy="simple"{remote})
for entity in tagger("Replace this with a text to tag."):
    print(entity["entity_group"], entity["word"], round(float(entity["score"]), 3))""",
    "chat": """from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained({path})
model = AutoModelForCausalLM.from_pretrained({path}{remote})
messages = [{{"role": "user", "content": "Hello, can you help me?"}}]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
output = model.generate(**inputs, max_new_tokens=128, do_sample=True, temperature=0.7, top_p=0.9)
print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))""",
}


def write_model_card(
    model_dir: str | Path, spec: JobSpec, report: dict[str, Any], *, variant: dict[str, Any] | None = None
) -> Path:
    """Write README.md, a Hugging Face model card, into `model_dir` (and a short one into a LoRA adapter beside it)."""
    # `variant` describes an exported copy of a trained model ({"name": "int8", "runtime": ..., "size_mb": ...,
    # "metrics": {...}}): its card says so, and its model-index carries the variant's own scores.
    model_dir = Path(model_dir)
    facts = gather_facts(model_dir, spec, report, variant)
    path = model_dir / CARD
    write_atomically(path, render_model_card(facts))
    adapter = model_dir.parent / ADAPTER
    # A variant is exported from model/; the adapter beside that already has its card from training.
    if variant is None and (adapter / "adapter_config.json").is_file():
        write_atomically(adapter / CARD, render_adapter_card(facts, adapter))
    return path


def gather_facts(
    model_dir: Path, spec: JobSpec, report: dict[str, Any], variant: dict[str, Any] | None = None
) -> Facts:
    """Everything a card says that is not in the report itself: the task, licence, languages and folders."""
    task = get_task(spec.task)
    config = _read_json(model_dir / "config.json")
    return Facts(
        spec=spec,
        report=report,
        task=task,
        model_dir=model_dir,
        pipeline_tag=pipeline_tag(task),
        license=model_license(spec.base_model),
        base_model_id=_base_model_id(spec.base_model),
        languages=languages(report, spec),
        variant=variant,
        remote_code=bool(config.get("auto_map")),
        ensemble=_read_json(model_dir / "ensemble.json"),
    )


def pipeline_tag(task: Task) -> str | None:
    """The Hugging Face pipeline a model of `task` runs in: the task's own name when transformers has that pipeline."""
    if task.architecture == "causal-lm":
        return CAUSAL_PIPELINE
    from transformers.pipelines import SUPPORTED_TASKS

    # The playground names its encoder tasks after transformers' pipelines; a task that is none has no tag.
    return task.name if task.name in SUPPORTED_TASKS else None


def render_model_card(facts: Facts) -> str:
    """The whole README.md: YAML front matter, then the card's sections."""
    lines = [f"# {facts.title}", ""]
    lines += variant_section(facts)
    lines += [about_paragraph(facts), ""]
    lines += results_section(facts)
    lines += limitations_section(facts)
    lines += usage_section(facts)
    lines += data_section(facts)
    lines += training_section(facts)
    lines += evaluation_section(facts)
    lines += license_section(facts)
    return front_matter_text(front_matter(facts)) + "\n".join(lines).rstrip() + "\n"


def front_matter(facts: Facts) -> dict[str, Any]:
    """The card's metadata in the Hugging Face model-card schema, fields without a known value left out."""
    results = model_index_metrics(facts.scores)
    runtime = (facts.variant or {}).get("runtime")
    meta: dict[str, Any] = {
        "base_model": facts.base_model_id,
        "library_name": runtime if runtime and runtime != "transformers" else "transformers",
        "pipeline_tag": facts.pipeline_tag,
        "language": [code for code, _ in facts.languages if code] or None,
        "license": facts.license.license,
        "tags": _tags(facts),
        "metrics": list(dict.fromkeys(metric["type"] for metric in results)) or None,
        "model-index": [{"name": facts.model_name, "results": [_result(facts, results)]}] if results else None,
    }
    # Local data files are not hub datasets; `datasets` names hub ids only, so it is left out.
    return {key: value for key, value in meta.items() if value is not None}


def front_matter_text(meta: dict[str, Any]) -> str:
    """`---`, the metadata as YAML (safe_dump quotes colons, quotes and keeps Chinese readable), `---`."""
    dumped = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
    return f"---\n{dumped}---\n\n"


def usage_section(facts: Facts) -> list[str]:
    """How to load the folder: transformers for a plain model, the playground's Predictor for ensembles, variants."""
    path = str(facts.model_dir.resolve())
    runtime = (facts.variant or {}).get("runtime")
    lines = ["## How to use", ""]
    if runtime and runtime != "transformers":  # an exported TorchScript or ONNX program, run by that runtime alone
        max_length = int((facts.variant or {}).get("max_length") or facts.spec.params.max_length)
        usage = runtime_usage(runtime, path, max_length, facts.task.playground)
        if usage is not None:
            return lines + usage
    if facts.ensemble or (runtime and runtime != "transformers") or not facts.pipeline_tag:
        members = len(facts.ensemble.get("members") or [])
        what = (
            f"This folder is an ensemble of {members} fine-tuned models (in members/) whose probabilities are averaged"
            if facts.ensemble
            else f"This folder runs with {runtime or 'Finetune Playground'}, not plain transformers"
        )
        call = _PREDICTOR_CALLS.get(facts.task.playground, "")
        lines += [f"{what}; Finetune Playground's Predictor loads it:", "", "```python"]
        lines += [
            "from engine.predict import Predictor",
            "",
            f"model = Predictor({json.dumps(path, ensure_ascii=False)})",
            call,
            "```",
            "",
        ]
        if not facts.ensemble:
            return lines
        path = f"{path}/members/1"
        lines += ["Plain transformers loads one member at a time:", ""]
    remote = ", trust_remote_code=True" if facts.remote_code else ""
    snippet = _SNIPPETS.get(facts.task.playground, _SNIPPETS["classify"])
    lines += [
        "```python",
        *snippet.format(tag=facts.pipeline_tag, path=json.dumps(path, ensure_ascii=False), remote=remote).splitlines(),
        "```",
        "",
    ]
    if facts.remote_code:
        lines += [
            "`trust_remote_code=True` runs the head's code that travels in this folder (a .py file beside "
            "the weights): read it first if the folder came from someone else.",
            "",
        ]
    if (facts.model_dir.parent / ADAPTER / "adapter_config.json").is_file() and not facts.variant:
        lines += [
            "The LoRA adapter alone (a few MB, for peft) is in `../adapter`; its README.md says how to load it.",
            "",
        ]
    return lines


def render_adapter_card(facts: Facts, adapter: Path) -> str:
    """A short card for the LoRA adapter folder: what it is, how peft loads it, where the full card is."""
    config = _read_json(adapter / "adapter_config.json")
    base_path = config.get("base_model_name_or_path") or facts.spec.base_model
    meta = {
        "base_model": facts.base_model_id,
        "library_name": "peft",
        "pipeline_tag": facts.pipeline_tag,
        "license": facts.license.license,
        "tags": [*_tags(facts), "peft"],
    }
    auto_class = "AutoPeftModelForCausalLM" if facts.task.architecture == "causal-lm" else None
    lines = [
        f"# Adapter of {facts.title}",
        "",
        f"This folder holds only the {_adapter_kind(config)} of the model in `../{facts.model_dir.name}`, "
        "which has it merged into its weights: load that folder unless you want to swap adapters on one base "
        "model. Results, data, limitations and licence are in its README.md.",
        "",
        f"The adapter was trained on top of these base weights: `{base_path}`.",
    ]
    if facts.spec.base_model in CATALOG and CATALOG[facts.spec.base_model].weights.converted:
        lines += [
            "They are Finetune Playground's conversion of a GGUF file, not the hub weights of "
            f"{facts.base_model_id}: put the adapter on these same weights.",
        ]
    if auto_class:
        lines += [
            "",
            "```python",
            f"from peft import {auto_class}",
            "",
            f"model = {auto_class}.from_pretrained({json.dumps(str(adapter.resolve()), ensure_ascii=False)})",
            "```",
        ]
    return front_matter_text({k: v for k, v in meta.items() if v is not None}) + "\n".join(lines) + "\n"


def _adapter_kind(config: dict[str, Any]) -> str:
    kind = str(config.get("peft_type", "LoRA")).replace("LORA", "LoRA")
    return f"{kind} adapter (rank {config['r']})" if config.get("r") else f"{kind} adapter"


def _result(facts: Facts, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    task: dict[str, Any] = {"name": facts.task.short_title}
    if facts.pipeline_tag:
        task = {"type": facts.pipeline_tag, **task}
    train_file = Path(str(facts.spec.data.test or facts.spec.data.train)).name
    # A local file has no hub id; its name stands in as the dataset type, the split says which part was scored.
    dataset = {"name": f"{train_file} (test split)", "type": train_file, "split": "test"}
    return {"task": task, "dataset": dataset, "metrics": metrics}


def _tags(facts: Facts) -> list[str]:
    params = facts.spec.params
    tags = [PRODUCER_TAG, facts.task.name]
    if params.method != "full":
        tags.append(params.method)
    tags += list((facts.report.get("techniques") or {}).get("used") or [])
    if facts.variant:
        tags.append(str(facts.variant.get("name", "variant")))
    return list(dict.fromkeys(tags))


def _base_model_id(name: str) -> str:
    entry = CATALOG.get(name)
    return entry.hub_id if entry and entry.hub_id else name


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return value if isinstance(value, dict) else {}
