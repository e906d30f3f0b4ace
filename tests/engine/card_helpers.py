"""For model-card tests: report.json as real training runs wrote them (MiniLM on tests/fixtures, SmolLM2 on the
support chats; trimmed of the training history, the confusion matrix and all but one error or generation), and
readers of a card's front matter and tables."""

import copy
import itertools
import re

import yaml

_CLASSIFIER = {
    "task": "text-classification",
    "base_model": "minilm-l6",
    "created_at": "2026-12-01T22:45:00+00:00",
    "split": "test",
    "n_test": 24,
    "labels": ["fresh", "rotten"],
    "metrics": {
        "accuracy": 0.9583333333333334,
        "macro_f1": 0.9582608695652174,
        "micro_f1": 0.9583333333333334,
        "weighted_f1": 0.9582608695652174,
        "macro_precision": 0.9615384615384616,
        "macro_recall": 0.9583333333333333,
    },
    "per_class": {
        "fresh": {"precision": 1.0, "recall": 0.9166666666666666, "f1": 0.9565217391304348, "support": 12},
        "rotten": {"precision": 0.9230769230769231, "recall": 1.0, "f1": 0.96, "support": 12},
    },
    "baseline": {
        "name": "TF-IDF + logistic regression",
        "accuracy": 0.75,
        "macro_f1": 0.7482517482517483,
        "per_class_f1": {"fresh": 0.7272727272727273, "rotten": 0.7692307692307693},
    },
    "errors": [
        {
            "text": '"Low Tide" is a tightly plotted crime story with not one wasted scene.',
            "label": "fresh",
            "predicted": "rotten",
            "confidence": 0.5804,
        }
    ],
    "warnings": [],
    "data": {
        "files": [
            {
                "split": "train",
                "path": "tests/fixtures/reviews.csv",
                "format": "csv",
                "encoding": "utf-8",
                "rows_read": 240,
                "rows_kept": 240,
            }
        ],
        "text_column": "review_body",
        "label_column": "verdict",
        "labels": ["fresh", "rotten"],
        "rows": 240,
        "rows_per_label": {"fresh": 120, "rotten": 120},
        "splits": {
            "train": {"rows": 192, "rows_per_label": {"fresh": 96, "rotten": 96}, "source": "file"},
            "validation": {
                "rows": 24,
                "rows_per_label": {"fresh": 12, "rotten": 12},
                "source": "split from the training file",
            },
            "test": {
                "rows": 24,
                "rows_per_label": {"fresh": 12, "rotten": 12},
                "source": "split from the training file",
            },
        },
        "dropped": {"blank_text": 0, "missing_label": 0},
        "duplicates": {"exact": 0, "conflicting_labels": 0, "across_splits": 0},
        "length_tokens": {"p50": 19, "p90": 24, "p95": 25, "p99": 28, "max": 32, "unit": "tokens"},
        "truncated": {"count": 0, "max_length": 64, "unit": "tokens"},
        "seed": 7,
        "language": {"scripts": {"Latin": 1.0}, "cjk_share": 0.0, "unknown_token_rate": 0.0},
        "notices": [],
    },
    "train": {
        "epochs": 2.0,
        "steps": 24,
        "train_samples": 192,
        "effective_batch_size": 16,
        "learning_rate": 0.0001,
        "method": "full",
        "wall_seconds": 17.15,
        "samples_per_second": 23.12,
        "final_train_loss": 0.6564,
        "best_epoch": 2.0,
        "best_step": 24,
        "best_validation_macro_f1": 0.9161,
        "precision": "bf16",
        "device": "cpu",
        "threads": 2,
        "trainable_parameters": 10993538,
        "total_parameters": 22713986,
        "trainable_share": 0.483999,
        "frozen_embeddings": True,
        "stopped_early": None,
        "search": None,
        "bf16_weights": False,
    },
}

_TAGGER = {
    "task": "token-classification",
    "base_model": "minilm-l6",
    "created_at": "2026-12-01T22:45:15+00:00",
    "split": "test",
    "n_test": 15,
    "n_test_tokens": 186,
    "labels": ["LOC", "MISC", "ORG", "PER"],
    "tags": ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"],
    "metrics": {
        "micro_f1": 0.9387755102040817,
        "macro_f1": 0.9246031746031746,
        "weighted_f1": 0.9358730158730159,
        "micro_precision": 0.9583333333333334,
        "micro_recall": 0.92,
        "macro_precision": 0.9772727272727273,
        "macro_recall": 0.8875,
        "token_accuracy": 0.978494623655914,
        "accuracy": 0.978494623655914,
    },
    "per_class": {
        "LOC": {"precision": 0.9090909090909091, "recall": 1.0, "f1": 0.9523809523809523, "support": 10},
        "MISC": {"precision": 1.0, "recall": 0.8, "f1": 0.888888888888889, "support": 5},
        "ORG": {"precision": 1.0, "recall": 0.75, "f1": 0.8571428571428571, "support": 4},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 6},
    },
    "error_kinds": {"missed": 1, "spurious": 0, "wrong_type": 1, "wrong_boundary": 0},
    "prediction_repairs": 0,
    "baseline": {
        "name": "most frequent tag per word",
        "micro_f1": 0.8372093023255813,
        "macro_f1": 0.8130252100840336,
        "token_accuracy": 0.9516129032258065,
        "accuracy": 0.9516129032258065,
        "per_class_f1": {"LOC": 0.8235294117647058, "MISC": 0.5714285714285715, "ORG": 0.8571428571428571, "PER": 1.0},
    },
    "warnings": [],
    "errors": [
        {
            "kind": "missed",
            "sentence_index": 12,
            "sentence": "A report by Save the Children warned that rivers in Mexico are drying up .",
            "entity": "Save the Children",
            "gold": "ORG",
            "predicted": "O",
            "predicted_entity": None,
            "start": 3,
            "end": 6,
        }
    ],
    "data": {
        "files": [
            {
                "split": "train",
                "path": "tests/fixtures/ner/en.conll",
                "format": "conll",
                "encoding": "utf-8",
                "tag_scheme": "IOB2",
                "sentences_read": 150,
                "sentences_kept": 150,
                "tokens": 1919,
            }
        ],
        "tokens_column": "1",
        "tags_column": "last",
        "labels": ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"],
        "entity_types": ["LOC", "MISC", "ORG", "PER"],
        "token_level": "word",
        "sentences": 150,
        "tokens": 1919,
        "entities": 283,
        "entities_per_type": {"LOC": 95, "MISC": 54, "ORG": 65, "PER": 69},
        "sentences_with_entities": 146,
        "splits": {
            "train": {
                "sentences": 120,
                "tokens": 1544,
                "entities": 230,
                "entities_per_type": {"LOC": 79, "MISC": 43, "ORG": 55, "PER": 53},
                "source": "file",
            },
            "validation": {
                "sentences": 15,
                "tokens": 189,
                "entities": 28,
                "entities_per_type": {"LOC": 6, "MISC": 6, "ORG": 6, "PER": 10},
                "source": "split from the training file, stratified by each sentence's rarest entity type",
            },
            "test": {
                "sentences": 15,
                "tokens": 186,
                "entities": 25,
                "entities_per_type": {"LOC": 10, "MISC": 5, "ORG": 4, "PER": 6},
                "source": "split from the training file, stratified by each sentence's rarest entity type",
            },
        },
        "tag_scheme": {"detected": "IOB2", "converted_tags": 0},
        "repairs": {"i_without_b": 0, "type_switch": 0},
        "length_tokens": {"p50": 15, "p90": 19, "p95": 20, "p99": 21, "max": 22, "unit": "tokens"},
        "truncated": {"count": 0, "max_length": 64, "unit": "tokens"},
        "dropped": {"empty_sentences": 0, "blank_tokens": 0},
        "duplicates": {"exact": 0, "conflicting_tags": 0, "across_splits": 0},
        "seed": 3,
        "language": {"scripts": {"Latin": 1.0}, "cjk_share": 0.0, "unknown_token_rate": 0.0},
        "notices": [],
    },
    "train": {
        "epochs": 2.0,
        "steps": 30,
        "train_samples": 120,
        "effective_batch_size": 8,
        "learning_rate": 0.0003,
        "method": "full",
        "wall_seconds": 5.46,
        "samples_per_second": 48.24,
        "final_train_loss": 0.6531,
        "best_epoch": 2.0,
        "best_step": 30,
        "best_validation_micro_f1": 0.9286,
        "precision": "bf16",
        "device": "cpu",
        "threads": 2,
        "trainable_parameters": 10848393,
        "total_parameters": 22568841,
        "trainable_share": 0.48068,
        "frozen_embeddings": True,
        "stopped_early": None,
        "search": None,
        "bf16_weights": False,
    },
}

_CHAT = {
    "task": "chat",
    "base_model": "smollm2-135m-instruct",
    "labels": [],
    "split": "test",
    "n_test": 16,
    "created_at": "2026-12-01T22:49:44+00:00",
    "repetition": {"base": 0.8922, "fine_tuned": 0.8917, "reference": 0.7632},
    "metrics": {
        "loss": 3.4695,
        "perplexity": 32.122,
        "base_loss": 3.9926,
        "base_perplexity": 54.196,
        "perplexity_change": -22.074,
    },
    "baseline": {"name": "base model, not fine-tuned", "loss": 3.9926, "perplexity": 54.196},
    "warnings": [],
    "generations": [
        {
            "prompt": [{"role": "user", "content": "Quillmate has become really slow."}],
            "reference": "Hi there! Sorry it's feeling sluggish. Large notebooks can slow the search index "
            'down. Go to Settings > Advanced and choose "Rebuild search index"; it runs in the '
            "background and usually takes a few minutes.\n"
            "\n"
            "— Ava from Support",
            "base": "Quillmate, hello there!\n"
            "I'm Quillmate, a loyal and enthusiastic pet lover. I see you're reaching for a quill.\n"
            "The most unexpected words ever...",
            "fine_tuned": "Quillmate is a multi-purpose AI in the cloud. It's designed to help users find their "
            "ideal place, with a wide range of options and features that make it easy to use. "
            "Quillmate has been used by many businesses, but when I saw the status tweet of your "
            "friend on Twitter about Quill",
        }
    ],
    "generation": {
        "tokens_per_second": 8.0,
        "decoding": "sampled: temperature 0.7, top-p 0.9, repetition penalty 1.1, seed 42; batched",
    },
    "data": {
        "files": [
            {
                "split": "train",
                "path": "tests/fixtures/chat/support.jsonl",
                "format": "jsonl",
                "encoding": "utf-8",
                "rows_read": 157,
                "examples": 157,
            }
        ],
        "kind": "conversations",
        "columns": {"messages": "messages"},
        "examples": 157,
        "splits": {
            "train": {"examples": 125, "source": "file"},
            "validation": {"examples": 16, "source": "split from the training file"},
            "test": {"examples": 16, "source": "split from the training file"},
        },
        "conversations": 157,
        "turns": {"total": 440, "system": 52, "user": 194, "assistant": 194},
        "multi_turn": 36,
        "with_system_prompt": 52,
        "length_tokens": {"p50": 111, "p90": 159, "p95": 182, "p99": 207, "max": 222, "unit": "tokens"},
        "truncated": {"count": 44, "max_length": 128, "unit": "tokens", "last_answer_lost": 16, "no_answer_left": 0},
        "language": {"scripts": {"Latin": 1.0}, "cjk_share": 0.0, "unknown_token_rate": 0.0},
        "duplicates": {"exact": 0, "across_splits": 0},
        "dropped": {},
        "seed": 42,
        "notices": [
            "44 conversation(s) (28%) are longer than max_length=128 tokens and will be truncated",
            "16 conversation(s) lose their whole last assistant answer to truncation; raise max_length or "
            "shorten those conversations",
            "the model's chat template adds its own default system prompt to the 105 conversation(s) "
            "without one; it carries no loss, and chatting uses the same template",
        ],
    },
    "train": {
        "epochs": 1.0,
        "steps": 16,
        "train_samples": 125,
        "effective_batch_size": 8,
        "learning_rate": 0.0002,
        "method": "lora",
        "wall_seconds": 81.85,
        "samples_per_second": 1.54,
        "final_train_loss": 3.6373,
        "best_epoch": 1.0,
        "best_step": 16,
        "best_validation_loss": 3.4886,
        "precision": "bf16",
        "device": "cpu",
        "threads": 2,
        "trainable_parameters": 4884480,
        "total_parameters": 139399488,
        "trainable_share": 0.035039,
        "frozen_embeddings": True,
        "stopped_early": None,
        "search": None,
        "bf16_weights": False,
        "gradient_checkpointing": None,
        "train_tokens_per_second": 96.8,
    },
    "errors": [],
}


def classifier() -> dict:
    """A text-classification report: minilm-l6 on reviews.csv (fresh / rotten), 24 test rows."""
    return copy.deepcopy(_CLASSIFIER)


def tagger() -> dict:
    """A token-classification report: minilm-l6 on ner/en.conll (LOC, MISC, ORG, PER), 15 test sentences."""
    return copy.deepcopy(_TAGGER)


def chat() -> dict:
    """A chat report: smollm2-135m-instruct with LoRA on chat/support.jsonl, 16 held-out conversations."""
    return copy.deepcopy(_CHAT)


def split_card(text: str) -> tuple[dict, str]:
    """The parsed YAML front matter and the markdown body of a card."""
    match = re.match(r"\A---\n(.*?)\n---\n(.*)\Z", text, flags=re.DOTALL)
    assert match, text[:300]
    return yaml.safe_load(match.group(1)), match.group(2)


def index_metrics(meta: dict) -> dict[str, float]:
    """model-index metric name -> value, from the one result the card has."""
    [entry] = meta["model-index"]
    [result] = entry["results"]
    return {metric["name"]: metric["value"] for metric in result["metrics"]}


def table_after(body: str, heading: str) -> dict[str, list[str]]:
    """The markdown table under `heading`: first cell -> the other cells."""
    lines = body.split(heading, 1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), lines[first:]))
    parsed = {}
    for line in rows[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        parsed[cells[0]] = cells[1:]
    return parsed


def section(body: str, title: str) -> str:
    """The text of one `## title` section."""
    return body.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
