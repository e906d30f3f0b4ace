"""Worker heartbeats on SQLite and PostgreSQL: what a worker records, when it counts as alive, and the device it
reports (GPUs read through nvidia-smi, here a stand-in script on PATH that answers like the real one)."""

from __future__ import annotations

import os
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest

from worker.device import Device, parse_gpus, probe_device
from worker.records import utcnow
from worker.settings import Settings
from worker.workers import FORGET_AFTER, WorkerBeat, WorkerInfo, WorkerStore

NVIDIA_SMI = """#!/bin/sh
# Answers like `nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader,nounits`, for the
# GPUs named by --id (all of them without it).
case "$1" in
  --id=1) echo "NVIDIA H200, 2048, 143771" ;;
  --id=*) echo "bad id" >&2; exit 6 ;;
  *) printf 'NVIDIA H200, 1024, 143771\\nNVIDIA H200, 2048, 143771\\n' ;;
esac
"""


def info(name: str, seconds_ago: float, device: Device | None = None) -> WorkerInfo:
    beat = utcnow() - timedelta(seconds=seconds_ago)
    return WorkerInfo(name, "box", 7, ("q1", "q2"), 2, beat, beat, device or Device("CPU (4 cores)"))


def test_heartbeats_are_recorded_updated_forgotten_and_read_back(engine):
    workers = WorkerStore(engine)
    workers.create_schema()
    gpu = Device("NVIDIA H200", 1 << 30, 140 << 30, 8 << 30, 64 << 30)
    workers.beat(info("w1@box", 30, gpu))
    workers.beat(info("w2@box", 0))
    workers.beat(info("w1@box", 1, gpu))  # the second beat updates the row
    listed = {worker.name: worker for worker in workers.list()}
    assert set(listed) == {"w1@box", "w2@box"}
    assert listed["w1@box"].device == gpu and listed["w1@box"].queues == ("q1", "q2")
    assert 1 <= listed["w1@box"].age() < 10 and listed["w1@box"].alive(lease_seconds=60)
    assert not listed["w1@box"].alive(lease_seconds=0.5)
    workers.beat(info("dead@box", (FORGET_AFTER + timedelta(minutes=1)).total_seconds()))
    workers.beat(info("w2@box", 0))  # a live worker's beat forgets the one silent for over a day
    assert {worker.name for worker in workers.list()} == {"w1@box", "w2@box"}
    workers.forget("w2@box")
    assert [worker.name for worker in workers.list()] == ["w1@box"]


def test_a_worker_beats_from_its_thread_and_removes_its_row_on_a_clean_stop(engine, tmp_path: Path):
    workers = WorkerStore(engine)
    workers.create_schema()
    settings = Settings(home=tmp_path, heartbeat_seconds=0.05)
    beat = WorkerBeat(workers, settings, name="w9@box", host="box", pid=os.getpid(), queues=["q"], concurrency=1)
    beat.start()
    try:
        [first] = workers.list()  # there at once, before the thread's first beat
        deadline = time.monotonic() + 10
        while workers.list()[0].heartbeat_at == first.heartbeat_at and time.monotonic() < deadline:
            time.sleep(0.02)
        [later] = workers.list()
        assert later.heartbeat_at > first.heartbeat_at and later.started_at == first.started_at
        assert (later.pid, later.queues, later.concurrency) == (os.getpid(), ("q",), 1)
        assert later.device.ram_total and later.device.ram_used
    finally:
        beat.stop()
    assert workers.list() == []


def test_nvidia_smi_lines_are_read_with_commas_in_names_and_unknown_memory():
    output = "NVIDIA H200, 1024, 143771\nNVIDIA A100-SXM4-80GB, with, commas, 3, 81920\nGH200, [N/A], [N/A]\n\n"
    assert parse_gpus(output) == [
        ("NVIDIA H200", 1024 << 20, 143771 << 20),
        ("NVIDIA A100-SXM4-80GB, with, commas", 3 << 20, 81920 << 20),
        ("GH200", None, None),
    ]


@pytest.fixture
def fake_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "bin" / "nvidia-smi"
    script.parent.mkdir()
    script.write_text(NVIDIA_SMI, encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_the_device_is_the_gpus_jobs_will_see(fake_gpus, monkeypatch: pytest.MonkeyPatch):
    both = probe_device()
    assert (both.name, both.memory_used, both.memory_total) == ("2× NVIDIA H200", 3072 << 20, 2 * 143771 << 20)
    assert both.ram_total and 0 < both.ram_used <= both.ram_total
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert (probe_device().name, probe_device().memory_used) == ("NVIDIA H200", 2048 << 20)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert probe_device().name.startswith("CPU (") and probe_device().memory_total is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    assert probe_device().name == "unknown (nvidia-smi failed)"  # says so, rather than pass for a CPU worker
