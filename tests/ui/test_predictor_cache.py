"""The playground's model cache: loads once, keeps a few, lets go of models nobody has used for a while."""

from __future__ import annotations

import time

import engine.predict
from ui.context import PredictorCache


class _Loaded:
    loads = 0

    def __init__(self, model_dir):
        type(self).loads += 1
        self.model_dir = model_dir


def _model(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    return folder


def test_cache_loads_once_keeps_a_few_and_drops_idle_models(tmp_path, monkeypatch):
    monkeypatch.setattr(engine.predict, "Predictor", _Loaded)
    a, b, c = (_model(tmp_path, n) for n in "abc")
    cache = PredictorCache(size=2, idle_seconds=60)
    assert cache.get(a) is cache.get(a) and _Loaded.loads == 1
    cache.get(b)
    cache.get(c)  # over the size: the least recently used (a) goes
    assert len(cache) == 2
    cache.get(a)
    assert _Loaded.loads == 4

    idle = PredictorCache(size=5, idle_seconds=0.05)
    idle.get(a)
    idle.get(b)
    time.sleep(0.1)
    idle.get(c)  # a and b went unused for longer than idle_seconds
    assert len(idle) == 1
