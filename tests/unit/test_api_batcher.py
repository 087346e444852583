"""The API's micro-batcher: batches gathered from waiting callers, each caller its own answer, a
batch's answers handed to the event loop at once, errors and cancelled callers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from api.state import MicroBatcher


def _gated() -> tuple[MicroBatcher, threading.Event, threading.Event, list[list[str]]]:
    """A batcher whose model call waits for ``release``; ``busy`` is set once a call started."""
    busy, release = threading.Event(), threading.Event()
    batches: list[list[str]] = []

    def fn(texts: list[str]) -> list[dict[str, Any]]:
        batches.append(list(texts))
        busy.set()
        release.wait(10)
        if "boom" in texts:
            raise ValueError("model failed")
        return [{"text": t, "n": len(t)} for t in texts]

    return MicroBatcher(fn), busy, release, batches


def test_waiting_callers_share_one_call_and_one_hand_over() -> None:
    batcher, busy, release, batches = _gated()

    async def main() -> tuple[list[Any], int]:
        loop = asyncio.get_running_loop()
        hand_overs = 0
        original = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal hand_overs
            hand_overs += 1
            return original(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        first = asyncio.ensure_future(batcher.run(["first"]))
        await loop.run_in_executor(None, busy.wait, 10)  # the worker is busy with "first"
        rest = [asyncio.ensure_future(batcher.run([f"text {i}", "x" * i])) for i in range(5)]
        await asyncio.sleep(0.05)  # all five queued behind the running call
        before = hand_overs
        release.set()
        answers = await asyncio.gather(first, *rest)
        return answers, hand_overs - before

    answers, hand_overs = asyncio.run(main())
    batcher.close()
    assert batches[0] == ["first"] and len(batches[1]) == 10  # five callers, one model call
    assert answers[0] == [{"text": "first", "n": 5}]
    for i, rows in enumerate(answers[1:]):
        assert [r["text"] for r in rows] == [f"text {i}", "x" * i]
    assert hand_overs <= 2  # one per batch (the executor's own wake-ups aside), not one per caller


def test_an_error_reaches_every_caller_of_the_batch_and_a_cancelled_one_is_skipped() -> None:
    batcher, busy, release, _ = _gated()

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(batcher.run(["first"]))
        await loop.run_in_executor(None, busy.wait, 10)
        failing = [asyncio.ensure_future(batcher.run(t)) for t in (["boom"], ["other"])]
        gone = asyncio.ensure_future(batcher.run(["gone"]))
        await asyncio.sleep(0.05)
        gone.cancel()
        release.set()
        return await asyncio.gather(first, *failing, return_exceptions=True)

    first, *failed = asyncio.run(main())
    batcher.close()
    assert first == [{"text": "first", "n": 5}]
    assert all(isinstance(e, ValueError) and "model failed" in str(e) for e in failed)


def test_threads_get_answers_and_errors_through_concurrent_futures() -> None:
    def fn(texts: list[str]) -> list[dict[str, Any]]:
        if "boom" in texts:
            raise ValueError("model failed")
        return [{"text": t} for t in texts]

    batcher = MicroBatcher(fn)
    try:
        assert batcher.submit(["a", "b"]).result(timeout=10) == [{"text": "a"}, {"text": "b"}]
        with pytest.raises(ValueError, match="model failed"):
            batcher.submit(["boom"]).result(timeout=10)
    finally:
        batcher.close()
