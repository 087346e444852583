"""Process-wide state of the API: the one Store (the store's single writer), the tagger, the rate
limiter and the background analysis runner.

DuckDB allows one writing process per file, and a connection must not be used by two threads at
once: the API therefore opens exactly one ``Store`` and every access goes through its lock (the
Store's own helpers take it). Threadpool routes are safe because of that lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import pandas as pd

from analyzer.common.clock import new_run_id
from analyzer.config import Settings, resolve_model_path
from analyzer.errors import InputError
from analyzer.store.database import Store
from analyzer.store.replica import Publisher
from api.keys import ApiKey, verify_key
from api.ratelimit import RateLimiter

log = logging.getLogger("civicpulse.api")


class TaggerUnavailableError(RuntimeError):
    """No usable tagger bundle (not trained yet, or refused): tagging answers 503."""


class AnalysisBusyError(RuntimeError):
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"analysis run {run_id} is still running")


def service_code(label: str) -> str:
    """A stable, URL-safe Open311 service code for a category label ("Illegal Parking" ->
    "illegal-parking")."""
    return re.sub(r"[^0-9a-z]+", "-", label.strip().lower()).strip("-") or "other"


Rows = list[dict[str, Any]]
# A caller waiting for its rows: a thread (a concurrent Future) or a coroutine (its event loop
# and an asyncio Future, resolved from that loop's thread).
Waiter = Future | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Rows]"]


class MicroBatcher:
    """Runs ``fn`` on one worker thread over batches gathered from concurrent callers.

    With 16 clients on 2 cores, running the model once per request makes them contend for the
    cores and pay the per-call overhead 16 times; gathering whatever is waiting into one call
    amortises that overhead and keeps the model single-threaded from Python's side. The answers
    of one batch reach an event loop in one hand-over (not one wake-up per request).
    """

    def __init__(
        self,
        fn: Callable[[list[str]], Rows],
        max_batch: int = 64,
        init: Callable[[], None] | None = None,
    ):
        self.fn = fn
        self.init = init
        self.max_batch = max_batch
        self.calls = 0  # model calls made, and texts they carried (mean batch = texts / calls)
        self.texts = 0
        self._queue: queue.SimpleQueue[tuple[list[str], Waiter] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="tagger-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: list[str]) -> Future[Rows]:
        fut: Future[Rows] = Future()
        self._queue.put((texts, fut))
        return fut

    async def run(self, texts: list[str]) -> Rows:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Rows] = loop.create_future()
        self._queue.put((texts, (loop, fut)))
        return await fut

    def close(self) -> None:
        self._queue.put(None)

    def _loop(self) -> None:
        if self.init is not None:
            self.init()  # thread-level settings (torch's thread count is per OS thread)
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            size = len(item[0])
            while size < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
                size += len(nxt[0])
            texts = [t for ts, _ in batch for t in ts]
            self.calls += 1
            self.texts += len(texts)
            try:
                rows = self.fn(texts)
            except Exception as exc:  # handed to every waiting caller
                self._deliver([(waiter, exc) for _, waiter in batch])
                continue
            answers: list[tuple[Waiter, Rows | BaseException]] = []
            pos = 0
            for ts, waiter in batch:
                answers.append((waiter, rows[pos : pos + len(ts)]))
                pos += len(ts)
            self._deliver(answers)

    @staticmethod
    def _deliver(answers: list[tuple[Waiter, Rows | BaseException]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Rows], Any]]] = {}
        for waiter, answer in answers:
            if isinstance(waiter, Future):
                _settle(waiter, answer)
            else:
                by_loop.setdefault(waiter[0], []).append((waiter[1], answer))
        for loop, pending in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(_settle_all, pending)


def _settle(fut: Future[Rows] | asyncio.Future[Rows], answer: Rows | BaseException) -> None:
    """Hand a waiting caller its rows (or the error); a cancelled one (client gone) is skipped."""
    if fut.done():
        return
    if isinstance(answer, BaseException):
        fut.set_exception(answer)
    else:
        fut.set_result(answer)


def _settle_all(pending: list[tuple[asyncio.Future[Rows], Any]]) -> None:
    """On the event loop's thread: every waiting coroutine of a batch at once."""
    for fut, answer in pending:
        _settle(fut, answer)


def _rows(out: Any) -> list[dict[str, Any]]:
    if isinstance(out, pd.DataFrame):
        return out.to_dict("records")
    return [dict(r) if not isinstance(r, dict) else r for r in out]


def _alternatives(value: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(value, dict):
        value = list(value.items())
    for alt in value if isinstance(value, (list, tuple, np.ndarray)) else []:
        if isinstance(alt, dict):
            label = alt.get("label")
            prob = alt.get("probability", alt.get("confidence", alt.get("score")))
        else:
            label, prob = alt[0], alt[1]
        if label is not None and prob is not None:
            out.append({"label": str(label), "probability": round(float(prob), 4)})
    return out


def normalise_prediction(row: dict[str, Any]) -> dict[str, Any]:
    """One tagger output row in the API's shape (the tagger may return a frame or dicts)."""
    label = row.get("predicted_label")
    label = None if label is None or (isinstance(label, float) and np.isnan(label)) else str(label)
    return {
        "label": label,
        "confidence": round(float(row.get("confidence") or 0.0), 4),
        "needs_review": bool(row.get("needs_review", True)),
        "alternatives": _alternatives(row.get("alternatives")),
        "possible_new_category": bool(row.get("possible_new_category", False)),
    }


def _one_torch_thread() -> None:
    """Run the model on one intra-op thread.

    Measured on this 2-core machine (one short text, all-MiniLM-L6-v2 inside the tagger): 26 ms of
    CPU per call with one thread, 511 ms with two while other processes shared the cores (the
    threads spin-wait for each other at every operator); a batch of 16 texts cost 31 ms with one
    thread. Batching gives the throughput, and the second core is left to the HTTP side.
    """
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


class TaggerService:
    """The active tagger (Settings.tagger_model), loaded once, shared by all requests."""

    def __init__(self, settings: Settings) -> None:
        self.folder = resolve_model_path(settings.tagger_model)
        self.embed_backend = settings.embed_backend
        self._lock = threading.Lock()
        self._tagger: Any = None
        self._error: str | None = None
        self._batcher: MicroBatcher | None = None
        self._warming = False

    def _load(self) -> Any:
        with self._lock:
            if self._tagger is not None:
                return self._tagger
            try:
                from analyzer.tagging.supervised import load_tagger

                # Supervised or zero-shot, whichever the bundle holds.
                self._tagger = load_tagger(self.folder, embed_backend=self.embed_backend)
            except ImportError:
                self._error = "the tagging module is not installed"
            except InputError as exc:
                self._error = exc.one_line()
            except (OSError, ValueError, KeyError) as exc:
                self._error = f"{self.folder}: {type(exc).__name__}"
            if self._tagger is None:
                raise TaggerUnavailableError(self._error or "no tagger")
            self._error = None
            _one_torch_thread()
            self._batcher = MicroBatcher(self._predict_rows, init=_one_torch_thread)
            return self._tagger

    def status(self) -> str:
        """ "ok", "warming" (loaded, first prediction still running) or "unavailable: why"."""
        if self._warming:
            return "warming"
        try:
            self._load()
        except TaggerUnavailableError as exc:
            return f"unavailable: {exc}"
        return "ok"

    def batch_stats(self) -> tuple[int, int]:
        """(model calls, texts) so far: texts / calls is the mean batch size."""
        b = self._batcher
        return (b.calls, b.texts) if b is not None else (0, 0)

    @property
    def model_name(self) -> str:
        return self.folder.name

    def categories(self) -> list[dict[str, str]]:
        """The tagger's categories (name, description), in its own order."""
        tagger = self._load()
        names: Sequence[Any] | None = None
        value = getattr(tagger, "classes_", None)
        if value is not None and len(value):
            names = list(value)
        # A zero-shot tagger carries its categories' descriptions (an Open311 services list).
        descriptions: dict[str, str] = {}
        for cat in getattr(tagger, "categories", None) or []:
            if isinstance(cat, dict):
                name = str(cat.get("name") or cat.get("service_name") or "")
                if name and cat.get("description"):
                    descriptions[name] = str(cat["description"])
        if names is None:
            raise TaggerUnavailableError("the tagger lists no categories")
        return [
            {"name": str(n), "description": descriptions.get(str(n), str(n))}
            for n in names
            if str(n).strip()
        ]

    def _predict_rows(self, texts: list[str]) -> list[dict[str, Any]]:
        rows = _rows(self._tagger.predict_detailed(texts))
        return [normalise_prediction(r) for r in rows]

    async def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        self._load()
        assert self._batcher is not None
        return await self._batcher.run(texts)

    def predict_sync(self, texts: list[str]) -> list[dict[str, Any]]:
        self._load()
        assert self._batcher is not None
        return self._batcher.submit(texts).result()

    def start_warming(self) -> None:
        # The flag is up before the thread runs, so /readyz never reports "ok" too early.
        self._warming = True
        threading.Thread(target=self.warm, name="tagger-warm", daemon=True).start()

    def warm(self) -> None:
        """Load the model and run it once, so the first real request pays for neither (the
        embedding model loads on the first prediction). /readyz says "warming" meanwhile."""
        self._warming = True
        try:
            self.predict_sync(["warm-up: the street light on the corner is out"])
        except TaggerUnavailableError:
            pass
        except Exception as exc:  # a failed warm-up shows on the first request
            log.warning(
                "tagger warm-up failed", extra={"event": "warm", "error": type(exc).__name__}
            )
        finally:
            self._warming = False

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()


class AnalysisRunner:
    """At most one background analysis at a time; its progress is in the ``runs`` table."""

    def __init__(self, app_state: AppState) -> None:
        self.app_state = app_state
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._run_id: str | None = None

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, refit: bool, key_id: str | None) -> str:
        with self._lock:
            if self.busy():
                raise AnalysisBusyError(self._run_id or "")
            run_id = new_run_id()
            store = self.app_state.store
            # The row exists before the thread starts, so GET /v1/runs/{id} never 404s in between.
            store.start_run(run_id, "analyze", {"requested_by_key": key_id, "refit": refit})
            store.update_run(run_id, message="queued")
            self._run_id = run_id
            self._thread = threading.Thread(
                target=self._run, args=(run_id, refit), name=f"analysis-{run_id}", daemon=True
            )
            self._thread.start()
            return run_id

    def _run(self, run_id: str, refit: bool) -> None:
        store = self.app_state.store
        try:
            from analyzer.analysis.pipeline import run_analysis

            run_analysis(store, self.app_state.settings, run_id=run_id, refit=refit)
            log.info("analysis done", extra={"event": "analysis", "run_id": run_id})
        except Exception as exc:  # recorded on the run; the thread must not die loud
            log.error(
                "analysis failed",
                extra={"event": "analysis", "run_id": run_id, "error": type(exc).__name__},
            )
            message = exc.one_line() if isinstance(exc, InputError) else type(exc).__name__
            # If the store itself failed there is nothing more to record.
            with contextlib.suppress(Exception):
                store.update_run(run_id, status="failed", message=f"failed: {message}"[:300])
        finally:
            self.app_state.note_write()  # its themes reach the replicas with the next snapshot

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


class AppState:
    """Everything one API process shares; the store opens on first use (or at startup).

    This is the primary (the store's one writer); ``api.replica.ReplicaState`` is a read
    replica's. ``publisher``, when set (``civicpulse serve --publish-every``), publishes the
    snapshot replicas serve: every write through this API calls ``note_write``.
    """

    read_only = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.tagger = TaggerService(settings)
        self.analysis = AnalysisRunner(self)
        self.publisher: Publisher | None = None
        self._store: Store | None = None
        self._store_lock = threading.Lock()

    def verify_key(self, key: str) -> ApiKey | None:
        """The presented key's record when it is live (``api.keys``), else None."""
        return verify_key(self.store, key)

    def note_write(self) -> None:
        """The store may have changed: the next snapshot check publishes."""
        if self.publisher is not None:
            self.publisher.note_write()

    @property
    def store(self) -> Store:
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    self._store = Store(self.settings.store_path)
        return self._store

    def close(self) -> None:
        self.tagger.close()
        if self.publisher is not None:
            self.publisher.close()
        if self.analysis.busy():
            # Closing the connection under a running analysis could corrupt its write; the
            # process is exiting, and the analysis' transaction is rolled back on restart.
            return
        if self._store is not None:
            self._store.close()
            self._store = None
