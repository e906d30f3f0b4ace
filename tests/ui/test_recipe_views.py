"""A report's recipe as a person reads it: the search's trials as a chart and a table, early stopping in words, and
a job's progress naming the trial it trains."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

from engine.markdown import recipe_lines
from ui.charts import search_chart
from ui.views import job_title, phases_line, progress_html
from worker.records import Job

SEARCH = {
    "metric": "macro_f1",
    "best_trial": 2,
    "trials": [
        {"number": 0, "learning_rate": 2.1e-5, "state": "complete", "score": 0.71, "steps": 36, "seconds": 12.0},
        {"number": 1, "learning_rate": 4.4e-4, "state": "pruned", "score": 0.33, "steps": 12, "seconds": 4.1},
        {"number": 2, "learning_rate": 9.8e-5, "state": "complete", "score": 0.92, "steps": 36, "seconds": 11.8},
    ],
}


def test_the_search_chart_puts_each_trial_at_its_learning_rate_and_marks_the_kept_one():
    svg = search_chart(SEARCH)
    circles = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="(\d+)" fill="([^"]+)"', svg)
    assert len(circles) == 3
    xs = [float(c[0]) for c in circles]
    assert xs[0] < xs[2] < xs[1]  # 2.1e-5 < 9.8e-5 < 4.4e-4 on the log axis
    ys = [float(c[1]) for c in circles]
    assert ys[2] < ys[0] < ys[1]  # a higher score is drawn higher (smaller y)
    assert [c[2] for c in circles] == ["4", "4", "7"]  # the kept trial is the large one
    assert circles[1][3] == "none"  # pruned: hollow
    assert "1e-04" in svg and "learning rate (log scale)" in svg
    assert search_chart(None) == "" and search_chart({"trials": []}) == ""


def test_recipe_lines_say_the_weights_trained_the_early_stop_and_the_trials():
    train = {
        "trainable_parameters": 455_426,
        "total_parameters": 23_390_596,
        "best_epoch": 2.0,
        "best_step": 24,
        "stopped_early": {"step": 48, "of_steps": 96, "epoch": 4.0, "reason": "validation macro F1 did not improve"},
        "search": SEARCH,
    }
    text = "\n".join(recipe_lines(train))
    assert "Trained 455,426 of 23,390,596 weights (1.95%)." in text
    assert "**Stopped early** at step 48 of 96 (epoch 4)" in text and "(epoch 2, step 24)" in text
    assert "3 trial(s), 1 pruned" in text
    assert "| 2 (best, kept) | 9.8e-05 | 0.920 | complete | 36 |" in text
    assert recipe_lines({}) == []


def test_a_search_job_says_which_trial_it_trains():
    job = Job(
        id="j1",
        owner="alice",
        kind="train",
        spec={},
        queue="training",
        status="running",
        created_at=datetime.now(UTC),
        step=5,
        total_steps=12,
        eta_seconds=30.0,
        phase="training: trial 2 of 6",
    )
    assert "Trial 2 of 6 · Step 5 of 12" in progress_html(job)
    assert "▶ training (trial 2 of 6, 5/12 steps)…" in phases_line(job)
    assert "✓ loading the model" in phases_line(job)


def test_the_jobs_list_says_a_job_searches_the_learning_rate():
    spec = {"base_model": "minilm-l6", "data": {"train": "/data/uploads/x/avis.csv"}, "params": {"epochs": 8}}
    job = Job(
        id="j2", owner="alice", kind="train", spec=spec, queue="q", status="queued", created_at=datetime.now(UTC)
    )
    assert job_title(job) == "train minilm-l6 on avis.csv, 8 epochs"
    job = replace(job, spec={**spec, "search": {"trials": 6, "learning_rate": [1e-5, 1e-3]}})
    assert job_title(job) == "train minilm-l6 on avis.csv, 8 epochs, learning-rate search of 6 trials"


def test_a_chat_job_too_big_for_free_memory_is_shown_with_the_checkpointing_it_will_turn_on(monkeypatch):
    from engine.memory import GB
    from engine.params import TrainingParams
    from ui.tabs import train_knobs

    params = TrainingParams(batch_size=8, max_length=512, method="lora", precision="bf16")
    monkeypatch.setattr(train_knobs, "available_bytes", lambda device: 1000 * GB)
    roomy = train_knobs.memory_line("smollm2-135m-instruct", params, "chat")
    assert "checkpointing" not in roomy and "Before you start" not in roomy
    peak = train_knobs.estimate(
        train_knobs.model_shape("smollm2-135m-instruct"), params, causal_lm=True, half_precision=True
    ).peak
    monkeypatch.setattr(train_knobs, "available_bytes", lambda device: peak * 0.9)  # short of the plain peak only
    tight = train_knobs.memory_line("smollm2-135m-instruct", params, "chat")
    assert "gradient checkpointing will turn on by itself" in tight and "Before you start" not in tight
    monkeypatch.setattr(train_knobs, "available_bytes", lambda device: 0.1 * GB)  # short even with checkpointing
    assert "Before you start" in train_knobs.memory_line("smollm2-135m-instruct", params, "chat")
