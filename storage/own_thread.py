"""Blocking work that may wait on a socket for long runs in a thread of its own, not in a
pooled one that disk work needs (a node receiving a shard body, storage.direct_file)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


def in_own_thread(fn: Callable[[], _T]) -> asyncio.Future[_T]:
    """Run blocking ``fn`` in a new thread of its own (a stream that waits on a socket for
    long must not hold a pooled thread that disk work needs); await its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting task
            deliver = functools.partial(_settle_exception, future, exc)
        else:
            deliver = functools.partial(_settle_result, future, result)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
            loop.call_soon_threadsafe(deliver)

    threading.Thread(target=run, name="huimin-receive", daemon=True).start()
    return future


def _settle_result(future: asyncio.Future[_T], result: _T) -> None:
    if not future.done():  # not cancelled meanwhile
        future.set_result(result)


def _settle_exception(future: asyncio.Future[_T], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
