"""What one attempt of a job fetches from the artifact store before it runs, and publishes to it while and after.

Before: on a later attempt, the job folder as last published (its checkpoints, to resume from, or a finished model
and report of an attempt that died before recording them); and every upload or model folder its spec names, which
were written by other hosts. While training: the job folder each time a new checkpoint is complete, so a job whose
host dies resumes on another. After success: the whole folder (model, report, logs), before the job is recorded as
succeeded, so whoever sees `succeeded` finds the model in the store. The job log, at each heartbeat while it grows in
the job's first minutes, then at most every half minute (it is re-sent whole, and a chatty job's log grows all its
life), and once more when the attempt ends however it ends. With no artifact store set, all of it is a no-op.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker.artifacts import ArtifactStore, localize_paths

log = logging.getLogger("playground.job")

CHECKPOINTS = "checkpoints"
LOG_FILE = "job.log"
# Written at the end of training, one file after another: published only once the job has succeeded.
_FINAL_ONLY = ("model/", "adapter/", "report.json", "report.md")
# The job log is kept at each heartbeat for this long (its first lines are the ones a user waits for, and most jobs
# that fail fail early), then at most every LOG_EVERY_SECONDS.
LOG_EAGER_SECONDS = 120.0
LOG_EVERY_SECONDS = 30.0


class JobArtifacts:
    """The job folder of one attempt, kept in step with the artifact store."""

    def __init__(
        self,
        store: ArtifactStore,
        folder: Path,
        *,
        owned: Callable[[], bool] = lambda: True,
        log_eager_seconds: float = LOG_EAGER_SECONDS,
        log_every_seconds: float = LOG_EVERY_SECONDS,
    ):
        self.store = store
        self.folder = Path(folder)
        self.owned = owned  # False once another attempt owns the job: it publishes, this one must not
        self._lock = threading.Lock()  # one publish at a time: two would each delete what the other still uses
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log_size = 0  # the size of the job log when it was last kept in the store
        self._log_kept_at = float("-inf")  # time.monotonic() when it was last kept
        self.log_eager_seconds = log_eager_seconds
        self.log_every_seconds = log_every_seconds

    @property
    def remote(self) -> bool:
        """True when there is an artifact store apart from the local data folder."""
        return self.store.remote

    def fetch(self, spec: dict[str, Any], *, later_attempt: bool) -> dict[str, Any]:
        """Fetch what the job needs; the spec with the files it names as this host's paths."""
        if not self.remote:
            return spec
        if later_attempt and self.store.sync_folder(self.folder):
            log.info("job folder %s fetched from the artifact store %s", self.folder.name, self.store.url)
            saved = self.folder / "spec.json"
            if saved.is_file():  # the other host's paths in it: resuming compares it with this host's spec
                own = localize_paths(json.loads(saved.read_text(encoding="utf-8")), self.store)
                saved.write_text(json.dumps(own, indent=2) + "\n", encoding="utf-8")
        return localize_paths(spec, self.store)

    def publish(self, *, final: bool) -> None:
        """Publish the job folder: everything once it succeeded, else what a resume needs (logs, checkpoints)."""
        if not self.remote:
            return
        with self._lock:
            self.store.put_folder(self.folder, include=self._final if final else self._interim)

    def publish_final(self) -> None:
        """Stop publishing checkpoints and publish the finished folder; raises ArtifactError when it cannot."""
        self.stop()
        self.publish(final=True)
        log.info("job folder %s published to the artifact store %s", self.folder.name, self.store.url)

    def publish_log(self) -> None:
        """Keep the job log in the store (one object, rewritten whole) now if it grew since it was last kept, so
        that the web app on another host shows the log of a job while it runs and once it has failed."""
        if not self.remote or not self.owned():
            return  # an attempt that lost the job must not overwrite the log of the one that owns it now
        path = self.folder / LOG_FILE
        size = path.stat().st_size if path.is_file() else 0
        if size and size != self._log_size:
            self.store.put_file(path)
            self._log_size = size
            self._log_kept_at = time.monotonic()  # after the upload: the next one waits a full gap from its end

    def watch(self, interval: float, *, checkpoints: bool) -> None:
        """Publish, in a thread of its own, the log when it grew (every `interval` in the job's first minutes,
        then less often), and (for a training job) the folder each time a new checkpoint is complete."""
        if self.remote and self._thread is None:
            self._thread = threading.Thread(target=self._watch, args=(interval, checkpoints), name="job-publisher")
            self._thread.daemon = True
            self._thread.start()

    def stop(self) -> None:
        """Stop the checkpoint publisher, letting a publish in progress end."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self, interval: float, checkpoints: bool) -> None:
        published: tuple[str, ...] = ()
        started = time.monotonic()
        while not self._stop.wait(interval):
            # Checkpoints first: they are what a resume on another host needs; the log only shows what happened.
            if checkpoints:
                published = self._publish_checkpoints(published)
            if not self._log_due(started):
                continue
            try:
                self.publish_log()
            except Exception as exc:  # the store is away for a moment: the next round tries again
                log.warning("job folder %s: could not keep its log (%s); will retry", self.folder.name, exc)

    def _log_due(self, started: float) -> bool:
        # Slower once the job is older: each upload re-sends the whole log. The attempt's end keeps it in full anyway.
        now = time.monotonic()
        return now - started < self.log_eager_seconds or now - self._log_kept_at >= self.log_every_seconds

    def _publish_checkpoints(self, published: tuple[str, ...]) -> tuple[str, ...]:
        complete = tuple(sorted(p.name for p in self._checkpoints() if _complete(p)))
        if not complete or complete == published or not self.owned():
            return published
        try:
            self.publish(final=False)
            log.info("job folder %s: %s published", self.folder.name, complete[-1])
            return complete
        except OSError as exc:  # the Trainer removed an older checkpoint meanwhile, or the store is away
            log.warning("job folder %s: could not publish %s (%s); will retry", self.folder.name, complete, exc)
            return published

    def _checkpoints(self) -> list[Path]:
        return list((self.folder / CHECKPOINTS).glob("checkpoint-*"))

    def _interim(self, rel: str) -> bool:
        return not rel.startswith(_FINAL_ONLY) and self._final(rel)

    def _final(self, rel: str) -> bool:
        parts = rel.split("/")
        # A checkpoint still being written is never published: the Trainer writes trainer_state.json last.
        if len(parts) > 2 and parts[0] == CHECKPOINTS and parts[1].startswith("checkpoint-"):
            return _complete(self.folder / CHECKPOINTS / parts[1])
        return True


def _complete(checkpoint: Path) -> bool:
    return (checkpoint / "trainer_state.json").is_file()
