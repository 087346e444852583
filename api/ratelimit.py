"""Per-client token buckets: N requests per minute per API key (or per IP for anonymous calls)."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """``allow(client)`` spends one token; refills at ``per_minute / 60`` tokens per second.

    The bucket holds at most ``per_minute`` tokens, so a client can burst to its minute's budget but
    never exceed it on average. ``per_minute <= 0`` disables limiting.
    """

    def __init__(self, per_minute: int, *, max_clients: int = 100_000) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last update)

    def allow(self, client: str) -> tuple[bool, int]:
        """(allowed, seconds to wait before the next token when not allowed)."""
        if self.per_minute <= 0:
            return True, 0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._buckets) > self.max_clients:
                self._evict(now)
            if allowed:
                return True, 0
            return False, max(1, math.ceil((1.0 - tokens) / self.rate))

    def _evict(self, now: float) -> None:
        # Full buckets carry no state worth keeping: a new bucket starts full anyway.
        full_after = self.per_minute / self.rate
        for client, (_, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[client]
