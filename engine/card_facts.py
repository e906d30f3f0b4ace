"""What a model card knows beyond the report's numbers (task, licence, folders), and the languages of the training
data, named from the scripts its summary counted; Latin-script text is called English only when it reads as English."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.catalog import ModelLicense
    from engine.spec import JobSpec
    from engine.tasks import Task

# Scripts that (nearly) one language is written in. Latin, Cyrillic, Arabic and Devanagari serve many languages:
# the card names them as scripts, except Latin text that reads as English.
_SCRIPT_LANGUAGES = {
    "Han": ("zh", "Chinese"),
    "Kana": ("ja", "Japanese"),
    "Hangul": ("ko", "Korean"),
    "Greek": ("el", "Greek"),
    "Hebrew": ("he", "Hebrew"),
    "Thai": ("th", "Thai"),
}
# A script below this share of the letters is a sprinkle (English product names in Chinese reviews), not a language
# the model learned.
MIN_SCRIPT_SHARE = 0.1
# English's commonest short words: about a third of running English text, a few percent of French or German.
_ENGLISH_WORDS = frozenset(
    re.findall(
        r"\w+",
        "the a an and of to in is was it its for on with that this as at by be are were not but or so if i you he "
        "she we they my your his her our their have has had from what how do does did can will would there",
    )
)
ENGLISH_SHARE = 0.12
MIN_WORDS = 20
SAMPLE_BYTES = 32_768  # the head of the training file: enough words to tell, instant to read
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_UNITS = {"classify": ("text", "texts"), "tag": ("sentence", "sentences"), "chat": ("conversation", "conversations")}
_CHAT_UNITS = {
    "instructions": ("instruction with its answer", "instructions with their answers"),
    "text": ("text", "texts"),
}
_COUNT_KEYS = ("rows", "sentences", "examples")
# Metric keys that describe the base model or a difference, not this model: left out of the model-index.
_NOT_THIS_MODEL = ("base_", "_change")
# The tagger report keeps `accuracy` as an alias of `token_accuracy`; the model-index lists the clearer name once.
_ALIASES = {"accuracy": "token_accuracy"}
_AVERAGES = ("macro", "micro", "weighted")
_PRETTY = {"f1": "F1"}


@dataclass(frozen=True)
class Facts:
    """One card's inputs: the job's spec and report, and what was looked up about its model and data."""

    spec: JobSpec
    report: dict[str, Any]
    task: Task
    model_dir: Path
    pipeline_tag: str | None
    license: ModelLicense
    base_model_id: str
    languages: list[tuple[str | None, str]]  # (ISO 639-1 code or None, what a person calls it)
    variant: dict[str, Any] | None = None
    remote_code: bool = False  # config.json names a head of the playground's own (trust_remote_code)
    ensemble: dict[str, Any] = field(default_factory=dict)  # ensemble.json of an ensemble folder

    @property
    def data(self) -> dict[str, Any]:
        """The report's data summary."""
        return self.report.get("data") or {}

    @property
    def train(self) -> dict[str, Any]:
        """The report's training info."""
        return self.report.get("train") or {}

    @property
    def scores(self) -> dict[str, Any]:
        """The test scores of the folder the card describes: a variant's own when it has them."""
        return (self.variant or {}).get("metrics") or self.report.get("metrics") or {}

    @property
    def title(self) -> str:
        """'minilm-l6 fine-tuned for text classification', with the variant's name."""
        title = f"{self.spec.base_model} fine-tuned for {self.task_kind}"
        return f"{title} ({self.variant.get('name', 'exported')} variant)" if self.variant else title

    @property
    def task_kind(self) -> str:
        """'text classification', 'token classification (NER)': the task's short title inside a sentence."""
        return self.task.short_title[:1].lower() + self.task.short_title[1:]

    @property
    def model_name(self) -> str:
        """The job's output folder name: what the model-index calls this model."""
        folder = self.model_dir.resolve()
        return folder.parent.name if folder.name == "model" and folder.parent.name else folder.name

    @property
    def units(self) -> tuple[str, str]:
        """What one example is called, singular and plural: 'text'/'texts', 'sentence'/'sentences', ..."""
        kind = self.data.get("kind")
        if self.task.playground == "chat" and kind in _CHAT_UNITS:
            return _CHAT_UNITS[kind]
        return _UNITS.get(self.task.playground, ("example", "examples"))

    @property
    def language_names(self) -> str:
        """'English', 'Chinese and English', or '' when no language was recognised."""
        names = [name for code, name in self.languages if code]
        return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)

    @property
    def base_description(self) -> str:
        """'minilm-l6 (sentence-transformers/all-MiniLM-L6-v2)', or the name alone when it is the hub id."""
        name = self.spec.base_model
        return f"{name} ({self.base_model_id})" if self.base_model_id != name else name

    def split_count(self, split: str) -> int | None:
        """How many examples a split of the data summary holds (rows, sentences or conversations)."""
        return count_of((self.data.get("splits") or {}).get(split))

    def file_name(self, split: str = "train") -> str:
        """The data file a split came from, by name."""
        return Path(str(getattr(self.spec.data, split, None) or self.spec.data.train)).name


def count_of(summary: Any) -> int | None:
    """The example count of a (split) summary, whatever it counts: rows, sentences or conversations."""
    if not isinstance(summary, dict):
        return None
    return next((int(summary[key]) for key in _COUNT_KEYS if number_of(summary.get(key)) is not None), None)


def number_of(value: Any) -> float | None:
    """A report number as a float; None for what is not one (missing, text, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    return float(value)


def own_metric_keys(metrics: dict[str, Any]) -> list[str]:
    """The keys of a report's metrics that score this model (not the base model, not a difference, no alias)."""
    return [
        key
        for key, value in metrics.items()
        if number_of(value) is not None
        and not any(part in key for part in _NOT_THIS_MODEL)
        and not (key in _ALIASES and _ALIASES[key] in metrics)
    ]


def model_index_metrics(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The test scores of this model as model-index metrics: type, value (as the report has it) and name."""
    entries = []
    for key in own_metric_keys(metrics):
        average, _, kind = key.partition("_") if key.startswith(_AVERAGES) else ("", "", key)
        kind = kind.removeprefix("token_")
        entry: dict[str, Any] = {"type": kind, "value": metrics[key], "name": metric_title(key)}
        if average:
            entry["args"] = {"average": average}
        entries.append(entry)
    return entries


def metric_title(key: str) -> str:
    """'macro_f1' -> 'Macro F1', 'token_accuracy' -> 'Token accuracy'."""
    words = [_PRETTY.get(word, word) for word in key.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def languages(report: dict[str, Any], spec: JobSpec) -> list[tuple[str | None, str]]:
    """The languages of the training data: (ISO code, name) per recognised one, (None, 'Cyrillic script') others."""
    scripts = ((report.get("data") or {}).get("language") or {}).get("scripts") or {}
    major = [script for script, share in scripts.items() if (number_of(share) or 0) >= MIN_SCRIPT_SHARE]
    found: list[tuple[str | None, str]] = []
    for script in major:
        if script == "Han" and "Kana" in scripts:
            continue  # Japanese writes Han characters beside its kana
        if script in _SCRIPT_LANGUAGES:
            found.append(_SCRIPT_LANGUAGES[script])
        elif script == "Latin":
            found.append(("en", "English") if looks_english(sample_texts(report, spec)) else (None, "Latin script"))
        else:
            found.append((None, f"{script} script"))
    return list(dict.fromkeys(found))


def looks_english(texts: list[str]) -> bool:
    """Whether the Latin-script words of `texts` are English: enough of them among its commonest words."""
    words = [word.lower() for text in texts for word in _WORD.findall(text)]
    return len(words) >= MIN_WORDS and sum(word in _ENGLISH_WORDS for word in words) / len(words) >= ENGLISH_SHARE


def sample_texts(report: dict[str, Any], spec: JobSpec) -> list[str]:
    """Texts to tell the language by: those the report quotes, and the head of the training file."""
    texts = [str(e.get("text") or e.get("sentence") or "") for e in report.get("errors") or [] if isinstance(e, dict)]
    for generation in report.get("generations") or []:
        texts.append(str(generation.get("reference") or ""))
        texts += [str(m.get("content") or "") for m in generation.get("prompt") or [] if isinstance(m, dict)]
    return [*texts, _file_head(report, spec)]


def _file_head(report: dict[str, Any], spec: JobSpec) -> str:
    path = Path(spec.data.train)
    if spec.data.format == "parquet" or path.suffix.lower() == ".parquet":
        return ""  # binary: its words are not in the bytes as text
    files = (report.get("data") or {}).get("files") or [{}]
    encoding = (files[0] if isinstance(files[0], dict) else {}).get("encoding") or spec.data.encoding or "utf-8"
    try:
        with path.open("rb") as handle:
            head = handle.read(SAMPLE_BYTES)
        return head.decode(encoding, errors="replace")
    except (OSError, LookupError):
        return ""  # the file moved since training: the report's own texts are all there is to go by


def flat(text: Any) -> str:
    """`text` on one line: a bullet or a quote that a newline would end early."""
    return " ".join(str(text).split())


def short(text: str, limit: int) -> str:
    """`text` on one line, cut at `limit` characters with an ellipsis."""
    line = flat(text)
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
