"""The engine is a plain library: importing it never pulls in the web app's or the queue's packages; the worker
never pulls in the web app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE_MODULES = [
    "engine",
    "engine.train",
    "engine.tasks.text_classification.data",
    "engine.report",
    "engine.predict",
    "engine.evaluation",
]
FORBIDDEN = ["celery", "gradio", "redis"]

PROBE = f"""
import json, sys
import {", ".join(ENGINE_MODULES)}
loaded = sorted({{name.split(".")[0] for name in sys.modules}})
print(json.dumps(loaded))
"""


def test_importing_the_engine_leaves_celery_gradio_and_redis_unloaded():
    # A fresh interpreter: in this one, other tests may already have imported the web app.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"engine", "torch", "transformers"} <= loaded  # the probe really imported the engine
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))


WORKER_MODULES = ["worker", "worker.store", "worker.api", "worker.tasks", "worker.runtime"]
WEB_APP = ["ui", "gradio"]

WORKER_PROBE = f"""
import json, sys
import {", ".join(WORKER_MODULES)}
loaded = sorted({{name.split(".")[0] for name in sys.modules}})
print(json.dumps(loaded))
"""


def test_importing_the_worker_leaves_the_web_app_and_gradio_unloaded():
    # A fresh interpreter, as above: a worker host need not have the web app's packages at all.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"worker", "celery", "sqlalchemy"} <= loaded  # the probe really imported the worker
    assert loaded.isdisjoint(WEB_APP), sorted(loaded & set(WEB_APP))
    # The worker's parent never loads torch (each job's child does, so CUDA starts in the process that uses it).
    assert loaded.isdisjoint({"torch", "transformers"}), sorted(loaded & {"torch", "transformers"})
