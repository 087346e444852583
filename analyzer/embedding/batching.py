"""What the ONNX and OpenVINO encoders share: tokenising, grouping texts into calls, threads.

``BatchingEncoder`` is a callable ``list[str] -> (n, dim) float32`` of L2-normalised sentence
embeddings. It tokenises texts once with the fast ``tokenizers`` library, truncated at the model's
``max_seq_length`` (256) like sentence-transformers, groups them into units of work, one inference
call each (``plan``), runs the units on a pool of single-threaded workers, costliest first, and
puts the vectors back in input order. A subclass loads its runtime and says how one unit runs
(``_run``, ``_first_inference``); the grouping is either

- ``batches`` (the default ``plan``): texts sorted by token length and batched with others of
  similar length, so a padded batch carries almost no padding (the ONNX encoder), or
- ``pack_rows``: several texts one after the other in a row, rows grouped into calls (the
  OpenVINO encoder, whose graph keeps the texts of a row apart).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

THREADS_ENV = "CIVICPULSE_ONNX_THREADS"


def default_threads() -> int:
    """The cores this process may use, or ``$CIVICPULSE_ONNX_THREADS``."""
    env = os.environ.get(THREADS_ENV)
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def pack_rows(
    lengths: np.ndarray,
    *,
    workers: int,
    row_tokens: int,
    call_tokens: int,
    small_tokens: int,
) -> list[list[list[int]]]:
    """Texts (token ``lengths``) packed into rows, rows grouped into inference calls.

    Returns calls, each a list of rows, each a list of text indices. Rows are filled first-fit
    in decreasing length up to ``row_tokens`` (a longer text has a row of its own); calls group
    rows of similar fill (the longest at most 1.25x the shortest, since a call pads every row to
    its longest) within ``call_tokens`` padded tokens and within an equal share of the total per
    worker, so every worker gets a call. A small input (at most ``small_tokens`` per worker, an
    API micro-batch) makes about one row per worker instead: one call each, no per-call overhead
    paid twice. Every text is in exactly one row.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return []
    workers = max(1, workers)
    total = int(lengths.sum())
    longest = int(lengths.max())
    if total <= workers * small_tokens:
        cap = max(longest, -(-total // workers))
    else:
        cap = max(row_tokens, 1)
    rows: list[list[int]] = []
    fill: list[int] = []
    for i in np.argsort(-lengths, kind="stable").tolist():
        n = int(lengths[i])
        for r, used in enumerate(fill):
            if used + n <= cap:
                rows[r].append(i)
                fill[r] += n
                break
        else:
            rows.append([i])
            fill.append(n)
    budget = max(1, min(call_tokens, -(-sum(fill) // workers)))
    calls: list[list[list[int]]] = []
    width = 0
    for r in np.argsort(-np.asarray(fill), kind="stable").tolist():
        current = calls[-1] if calls else None
        if current is None or (len(current) + 1) * width > budget or fill[r] * 1.25 < width:
            calls.append([])
            width = fill[r]
        calls[-1].append(rows[r])
    return calls


class BatchingEncoder:
    """Callable ``list[str] -> (n, dim) float32`` of L2-normalised sentence embeddings.

    ``batch_size`` caps the texts and ``max_batch_tokens`` the padded tokens per unit (one
    overlong text still forms a unit). Small units split badly across threads, so the cores are
    used by ``workers`` units running at once on one shared runtime (ONNX Runtime and OpenVINO
    release the GIL while they run), each single-threaded.

    A subclass sets ``dim`` once its runtime is loaded and implements ``_run`` (one unit's
    vectors) and ``_first_inference``; one with another unit layout than ``batches`` overrides
    ``plan``, ``_cost`` and ``_texts_of`` as well.
    """

    # Widths are rounded up to a multiple of this: fewer distinct shapes for runtimes that compile
    # a kernel per shape (the padding is masked, so the vectors do not change).
    width_multiple = 1
    # A batch's longest text is at most this many times its shortest (plus one width step):
    # padding costs as much as real tokens, and batching itself saves little on a CPU (measured:
    # 16 texts of 40 tokens in one call 75 ms, one at a time 6 ms each), so a few random texts
    # (an API micro-batch) split by length rather than all padding to the longest.
    max_pad_ratio = 1.25
    thread_name_prefix = "embed"
    dim: int

    def __init__(
        self,
        model_file: Path,
        tokenizer_file: Path,
        *,
        max_seq_length: int = 256,
        batch_size: int = 64,
        max_batch_tokens: int = 512,
        threads: int | None = None,
        workers: int | None = None,
        chunk_size: int = 4096,
    ) -> None:
        from tokenizers import Tokenizer

        self.model_file = Path(model_file)
        self.max_seq_length = max_seq_length
        self.batch_size = max(1, batch_size)
        self.max_batch_tokens = max(1, max_batch_tokens)
        self.chunk_size = max(chunk_size, self.batch_size)
        self.threads = threads or default_threads()
        self.workers = max(1, min(workers or self.threads, self.threads))
        tok = Tokenizer.from_file(str(tokenizer_file))
        # tokenizer.json ships with fixed padding and truncation at 128; sentence-transformers
        # truncates at max_seq_length and pads per batch, so do the same.
        tok.no_padding()
        tok.enable_truncation(max_length=max_seq_length)
        self.tokenizer = tok
        self._pool: ThreadPoolExecutor | None = None
        self._first_call = threading.Lock()
        self._warmed = False

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Chunks bound the memory held by tokenizer output on very large inputs; bucketing inside
        # a chunk of a few thousand texts is nearly as tight as over the whole input.
        for start in range(0, len(texts), self.chunk_size):
            part = texts[start : start + self.chunk_size]
            chunk = [t if isinstance(t, str) else "" for t in part]
            out[start : start + len(chunk)] = self._encode_chunk(chunk)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in self.tokenizer.encode_batch(texts, add_special_tokens=True)]

    def batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Index batches over texts sorted by token length, each within the batch limits."""
        order = np.argsort(lengths, kind="stable")
        sorted_lengths = lengths[order]
        batches: list[np.ndarray] = []
        start = 0
        while start < len(order):
            # Sorted ascending, so the last row of a candidate batch is its padded length.
            stop = min(start + self.batch_size, len(order))
            first = int(sorted_lengths[start])
            limit = max(first * self.max_pad_ratio, first + self.width_multiple)
            stop = max(
                start + 1,
                min(stop, int(np.searchsorted(sorted_lengths, limit, side="right"))),
            )
            while stop - start > 1:
                width = int(lengths[order[stop - 1]])
                if (stop - start) * width <= self.max_batch_tokens:
                    break
                # Strictly shrinks (budget // width < rows here) and stops at one row.
                stop = start + max(1, self.max_batch_tokens // width)
            batches.append(order[start:stop])
            start = stop
        return batches

    def padded(
        self, ids: list[list[int]], lengths: np.ndarray, batch: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A batch's token ids and attention mask, padded to its longest text (rounded up)."""
        width = int(lengths[batch].max())
        width = -(-width // self.width_multiple) * self.width_multiple
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, index in enumerate(batch):
            n = lengths[index]
            input_ids[row, :n] = ids[index]
            mask[row, :n] = 1
        return input_ids, mask

    # The units of work, one inference call each: here index batches (``batches``); an encoder
    # with another input layout (the OpenVINO encoder's packed rows) overrides these three.
    def plan(self, lengths: np.ndarray) -> list[Any]:
        """One unit per inference call over texts of these token lengths."""
        return self.batches(lengths)

    def _cost(self, unit: Any, lengths: np.ndarray) -> int:
        """A unit's padded tokens (what its call costs)."""
        return len(unit) * int(lengths[unit].max())

    def _texts_of(self, unit: Any) -> Any:
        """The indices of a unit's texts, in the order ``_run`` returns their vectors."""
        return unit

    def _run(self, ids: list[list[int]], lengths: np.ndarray, unit: Any) -> np.ndarray:
        """The vectors of one unit's texts (one inference call)."""
        raise NotImplementedError

    def _first_inference(self) -> None:
        """One small inference (see ``_warm``)."""
        raise NotImplementedError

    def _warm(self) -> None:
        """One inference, by one thread, before any other: the first call of the process.

        OpenVINO's and ONNX Runtime's Python bindings (pybind11) set up their numpy bridge on the
        process's first call; two threads making that first call at once deadlocked here (each
        waiting for the other, no CPU used): pool threads, or two callers of one encoder (the
        API's tagging workers). One call under a lock takes that out of the race.
        """
        if self._warmed:
            return
        with self._first_call:
            if not self._warmed:
                self._first_inference()
                self._warmed = True

    def _parallel(self) -> ThreadPoolExecutor:
        """The worker pool (created once, after the first inference)."""
        with self._first_call:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.workers, thread_name_prefix=self.thread_name_prefix
                )
            return self._pool

    def _encode_chunk(self, texts: list[str]) -> np.ndarray:
        self._warm()
        ids = self.tokenize(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        units = self.plan(lengths)
        if self.workers > 1 and len(units) > 1:
            # Costliest first: the last unit to start is then a short one, so the streams finish
            # together instead of one running the longest unit alone at the end.
            units.sort(key=lambda u: -self._cost(u, lengths))
            results = self._parallel().map(lambda u: self._run(ids, lengths, u), units)
        else:
            results = (self._run(ids, lengths, u) for u in units)
        for unit, vectors in zip(units, results, strict=True):
            out[self._texts_of(unit)] = vectors
        return out
