"""Request rate limits of share links: a token bucket per link, in the memory of one web process.

Each web process counts on its own, so behind N processes a link allows up to N times its rate; the buckets start
full again when the process restarts. That is enough to stop one open link from keeping a model busy for everyone.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

DEFAULT_SHARE_RATE_PER_MINUTE = 30
_MAX_BUCKETS = 10_000  # above this, buckets that have refilled completely are dropped (they hold nothing)


def share_rate_per_minute() -> int:
    """Predictions a share link allows per minute by default (`PLAYGROUND_SHARE_RATE_PER_MINUTE`, default 30)."""
    raw = os.environ.get("PLAYGROUND_SHARE_RATE_PER_MINUTE", "").strip()
    try:
        rate = int(raw) if raw else DEFAULT_SHARE_RATE_PER_MINUTE
    except ValueError as exc:
        raise ValueError(f"PLAYGROUND_SHARE_RATE_PER_MINUTE={raw!r} is not a whole number") from exc
    if rate <= 0:
        raise ValueError(f"PLAYGROUND_SHARE_RATE_PER_MINUTE must be 1 or more, got {rate}")
    return rate


class RateLimiter:
    """Token buckets by key: each holds up to `per_minute` requests and refills at `per_minute` a minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._buckets: dict[str, tuple[float, float, int]] = {}  # key -> (tokens left, when counted, capacity)
        self._lock = threading.Lock()

    def take(self, key: str, per_minute: int) -> float:
        """0.0 when a request may go ahead (it is counted), else the seconds until the next one may."""
        refill = per_minute / 60.0
        with self._lock:
            now = self._clock()
            tokens, then, _ = self._buckets.get(key, (float(per_minute), now, per_minute))
            tokens = min(float(per_minute), tokens + (now - then) * refill)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now, per_minute)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now, per_minute)
                wait = (1.0 - tokens) / refill
            if len(self._buckets) > _MAX_BUCKETS:
                self._drop_full(now)
            return wait

    def _drop_full(self, now: float) -> None:
        for key, (tokens, then, capacity) in list(self._buckets.items()):
            if tokens + (now - then) * capacity / 60.0 >= capacity:
                del self._buckets[key]
