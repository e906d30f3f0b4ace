"""A run's techniques as the pages show them: the Report tab's "What it bought" table and verdict, one section per
technique (long, accented and Chinese texts kept whole), the job list's line, and a running job's stage."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ui.tabs.jobs import technique_comparisons
from ui.tabs.report_techniques import techniques_view
from ui.technique_report import bought_frame, clock, technique_sections
from ui.views import job_line, job_title, jobs_frame, phases_line, progress_html
from worker.records import Job
from worker.runtime import report_summary

LONG = (
    "Le service était d'une lenteur désespérante, la soupe arrivée froide, le serveur a renversé le vin sur la nappe "
    "et personne ne s'est excusé ; nous avons attendu quarante-cinq minutes pour un dessert qui n'est jamais venu."
)
CHINESE = "服务态度很好，菜也好吃，环境干净整洁，下次还会再来。"
VERDICT = (
    "Data augmentation + Self-training beat the plain recipe on the test split: macro F1 0.740 against 0.700 (+0.040)."
)
REPORT = {
    "task": "text-classification",
    "metrics": {"accuracy": 0.76, "macro_f1": 0.74},
    "comparison": {
        "metric": "macro_f1",
        "metric_name": "macro F1",
        "techniques": ["Data augmentation", "Self-training"],
        "plain": {
            "score": 0.70,
            "accuracy": 0.72,
            "per_class_f1": {"négatif": 0.71, "正面": 0.69},
            "wall_seconds": 40.0,
        },
        "technique": {
            "score": 0.74,
            "accuracy": 0.765,
            "per_class_f1": {"négatif": 0.75, "正面": 0.6612},
            "wall_seconds": 112.4,
        },
        "delta": 0.04,
        "accuracy_delta": 0.045,
        "better": True,
        "verdict": VERDICT,
    },
    "techniques": {
        "used": ["augment", "adversarial", "ensemble", "domain_pretraining", "self_training"],
        "titles": ["Data augmentation", "Adversarial training", "Ensemble", "Domain pre-training", "Self-training"],
        "augment": {
            "methods": ["swap", "delete"],
            "copies": 2,
            "rate": 0.1,
            "unit": "mixed",
            "original": 240,
            "added": 470,
            "added_per_label": {"négatif": 240, "正面": 230},
            "examples": [
                {"method": "swap", "label": "négatif", "before": LONG, "after": LONG.replace("lenteur", "soupe")},
                {"method": "delete", "label": "正面", "before": CHINESE, "after": CHINESE.replace("很", "")},
            ],
        },
        "adversarial": {
            "method": "pgd",
            "epsilon": 0.5,
            "steps": 3,
            "robustness": {
                "epsilon": 0.5,
                "clean_accuracy": 0.82,
                "perturbed_accuracy": 0.61,
                "plain_clean_accuracy": 0.80,
                "plain_perturbed_accuracy": 0.40,
            },
        },
        "ensemble": {
            "split": "folds",
            "metric": "macro_f1",
            "members": [
                {"member": 1, "seed": 42, "fold": 1, "train_rows": 200, "score": 0.71, "accuracy": 0.75},
                {"member": 2, "seed": 43, "fold": 2, "train_rows": 201, "score": None, "accuracy": None},
            ],
            "score": 0.74,
            "accuracy": 0.77,
            "best_member_score": 0.72,
            "size_mb": 260.3,
            "member_size_mb": 86.8,
            "latency_ms": {"ensemble": 12.3, "member": 4.1},
        },
        "domain_pretraining": {
            "texts": 3000,
            "held_out": 300,
            "epochs": 3,
            "steps": 120,
            "wall_seconds": 80.2,
            "fresh_head": True,
            "mlm_loss_head_only": 4.25,
            "mlm_loss_before": 6.1,
            "mlm_loss_after": 3.2,
        },
        "self_training": {
            "unlabeled": 3000,
            "threshold": 0.9,
            "kept_round": 1,
            "rounds": [
                {"round": 0, "added": {}, "added_total": 0, "train_rows": 200, "validation_score": 0.70,
                 "test_score": 0.68},
                {"round": 1, "added": {"négatif": 300, "正面": 120}, "added_total": 420, "train_rows": 620,
                 "validation_score": 0.74, "test_score": 0.72},
            ],
        },
    },
}  # fmt: skip


def _cells(html_text: str) -> list[list[str]]:
    """The rows of every table in an HTML piece, as the text of their cells."""
    rows = re.findall(r"<tr>(.*?)</tr>", html_text)
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in rows]


def test_what_it_bought_comes_first_with_the_verdict_and_a_signed_side_by_side_table():
    shown, compared, verdict, table, sections = techniques_view(REPORT)
    assert shown and compared
    assert verdict == f"### What it bought\n\n{VERDICT}"
    assert list(table.columns) == ["", "Plain recipe", "With Data augmentation + Self-training", "Difference"]
    rows = {row[0]: list(row[1:]) for row in table.itertuples(index=False)}
    assert list(rows) == ["Test macro F1", "Accuracy", "F1 · négatif", "F1 · 正面", "Training time"]
    assert rows["Test macro F1"] == ["0.700", "0.740", "+0.040"]
    assert rows["Accuracy"] == ["0.720", "0.765", "+0.045"]
    assert rows["F1 · 正面"] == ["0.690", "0.661", "-0.029"]  # a label the techniques made worse says so
    assert rows["Training time"] == ["40 s", "1 min 52 s", "+1 min 12 s"]
    assert sections.startswith('<div class="pg-techniques">')


def test_a_task_without_accuracy_or_a_run_without_a_comparison():
    tagger = json.loads(json.dumps(REPORT["comparison"]))
    tagger["plain"]["accuracy"] = tagger["technique"]["accuracy"] = tagger["accuracy_delta"] = None
    tagger["delta"] = None  # computed from the scores when the report leaves it out
    tagger["technique"]["wall_seconds"] = None
    rows = {row[0]: list(row[1:]) for row in bought_frame(tagger).itertuples(index=False)}
    assert "Accuracy" not in rows and rows["Test macro F1"] == ["0.700", "0.740", "+0.040"]
    assert rows["Training time"] == ["40 s", "", ""]
    no_comparison = {**REPORT, "comparison": None}
    shown, compared, verdict, _, sections = techniques_view(no_comparison)
    assert shown and not compared and verdict == "" and "Self-training" in sections
    assert techniques_view({"task": "text-classification", "metrics": {}}) == (
        False,
        False,
        "",
        *techniques_view({})[3:],
    )
    assert techniques_view({})[4] == ""
    assert (clock(45), clock(72), clock(120), clock(3900), clock(None)) == (
        "45 s",
        "1 min 12 s",
        "2 min",
        "1 h 05 min",
        "",
    )


def test_each_technique_has_its_section_with_its_numbers_and_the_texts_whole():
    sections = technique_sections(REPORT["techniques"], REPORT["comparison"])
    titles = re.findall(r"<h4>(.*?)</h4>", sections)
    assert titles == ["Data augmentation", "Adversarial training", "Ensemble", "Domain pre-training", "Self-training"]
    rows = _cells(sections)
    # Augmentation: the counts, and each example before and after, the long French one and the Chinese one whole.
    assert "240 training examples, 470 edited copies added (2 per example; edits: swap, delete;" in sections
    assert "Added per label: négatif 240 · 正面 230." in sections
    assert [
        "swap",
        "négatif",
        LONG.replace("'", "&#x27;"),
        LONG.replace("lenteur", "soupe").replace("'", "&#x27;"),
    ] in rows
    assert ["delete", "正面", CHINESE, CHINESE.replace("很", "")] in rows
    assert 'class="pg-text"' in sections  # the cells that wrap
    # Adversarial: accuracy under the same perturbation for both models.
    assert ["Plain recipe", "0.800", "0.400", "-0.400"] in rows and [
        "Adversarial training",
        "0.820",
        "0.610",
        "-0.210",
    ] in rows
    assert "PGD perturbations of the embeddings, epsilon 0.5, 3 steps." in sections
    # Ensemble: members with seed and fold, then the ensemble's own row, size and latency.
    assert ["1", "seed 42 · fold 1", "200", "n/a", "0.710", "0.750", "", "yes"] in rows
    assert ["2", "seed 43 · fold 2", "201", "n/a", "n/a", "n/a", "", "yes"] in rows
    assert ["Ensemble", "members kept", "", "", "0.740", "0.770", "", ""] in rows
    header = ["Member", "Seed / fold", "Training rows", "Validation macro F1", "Test macro F1", "Accuracy", "Time"]
    assert [*header, "Kept"] in rows
    assert (
        "Best single member 0.720 (+0.020); size 260.3 MB (86.8 MB per member); latency 12.3 ms per text" in sections
    )
    # Domain pre-training: the masked-LM loss before and after.
    assert (
        "Masked-LM loss on 300 held-out texts: 6.100 → 3.200 (-2.900); 4.250 once the fresh masked-LM head alone was "
        "fitted." in sections
    )
    assert "Read 3,000 texts, 3 epochs, 120 steps, 1 min 20 s. The base model had no masked-LM head" in sections
    # Self-training: a row per round, the kept one marked, pseudo-labels per label.
    assert ["Round", "Pseudo-labels added", "Training rows", "Validation macro F1", "Test macro F1"] in rows
    assert ["0", "none (labeled data only)", "200", "0.700", "0.680"] in rows
    assert ["1 (kept)", "négatif 300 · 正面 120 (420 in all)", "620", "0.740", "0.720"] in rows


def test_null_values_and_markup_in_a_report_do_not_break_the_sections():
    techniques = {
        "used": ["augment", "adversarial", "self_training"],
        "augment": {"methods": None, "examples": [{"method": "insert", "label": "<b>x</b>", "before": None}]},
        "adversarial": {"method": "fgm", "epsilon": None, "robustness": None},
        "self_training": None,
    }
    sections = technique_sections(techniques)
    assert "&lt;b&gt;x&lt;/b&gt;" in sections and "<b>x</b>" not in sections
    assert "No robustness check in this report." in sections and "epsilon n/a." in sections
    assert "<h4>Self-training</h4><p>No details in this report.</p>" in sections


def _job(status: str, **extra) -> Job:
    spec = {
        "base_model": "minilm-l6",
        "data": {"train": "/srv/uploads/0123456789abcdef/avis clients.csv"},
        "params": {"epochs": 3},
        "techniques": {"augment": {}, "adversarial": {"epsilon": 0.8}, "ensemble": None, "compare_with_plain": True},
    }
    return Job(
        id="job-1234abcd", owner="alice", kind="train", spec=spec, queue="q", status=status,
        created_at=datetime.now(UTC), **extra,
    )  # fmt: skip


def test_the_job_list_says_which_techniques_a_job_used_and_what_they_bought(tmp_path: Path):
    # The worker records the comparison in the job's summary from report.json (worker.runtime.report_summary).
    finished = _job("succeeded", artifact_dir=tmp_path, summary=report_summary(REPORT))
    assert job_title(finished) == "train minilm-l6 on avis clients.csv, 3 epochs, augmentation + adversarial"
    comparisons = technique_comparisons([finished, replace(_job("succeeded"), id="job-older")])
    assert list(comparisons) == ["job-1234abcd"]  # a job recorded without one names its techniques only
    line = "train minilm-l6 on avis clients.csv, 3 epochs, augmentation + adversarial: +0.040 macro F1 over plain"
    assert job_line(finished, comparisons[finished.id]) == line
    assert jobs_frame([finished], comparisons)["What"].iloc[0] == line
    worse = {**REPORT["comparison"], "delta": -0.0132}
    assert job_line(finished, worse).endswith("augmentation + adversarial: -0.013 macro F1 over plain")
    assert job_line(finished) == job_title(finished)  # compare_with_plain off: no comparison to quote
    plain = replace(finished, spec={**finished.spec, "techniques": None})
    assert technique_comparisons([plain]) == {} and job_line(plain, worse) == job_title(plain)
    running = _job("running", step=3, total_steps=12, phase="training: member 2 of 3")
    assert job_line(running).endswith("augmentation + adversarial (now: member 2 of 3)")


def test_a_running_job_shows_the_stage_its_phase_names():
    job = _job("running", step=5, total_steps=20, eta_seconds=30.0, phase="training: plain recipe (for comparison)")
    assert "Plain recipe (for comparison) · Step 5 of 20 · about 30 s left" in progress_html(job)
    assert "▶ training (plain recipe (for comparison), 5/20 steps)…" in phases_line(job)
    job = replace(job, phase="training: self-training round 1 of 2", step=20)
    assert "Self-training round 1 of 2 · Step 20 of 20" in progress_html(job)  # the stage's last step, not the end
    job = replace(job, phase="training: domain pre-training", step=0, total_steps=None)
    assert "Domain pre-training: starting…" in progress_html(job)
    assert "▶ training (domain pre-training)…" in phases_line(job)
    job = replace(job, phase="training: MLM on 评论", step=1, total_steps=4)
    assert "MLM on 评论 · Step 1 of 4" in progress_html(job)
    job = replace(job, phase="training", step=4, total_steps=4)  # one run: the last step is followed by scoring
    assert "Trained (4 steps): scoring the test split" in progress_html(job)
