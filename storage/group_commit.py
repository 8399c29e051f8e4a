"""Handles of queued index writes, settled a whole group commit at a time.

A write queued on ``storage.index.Index`` resolves once its group commit is durable. Settling
each write through a ``concurrent.futures.Future`` wrapped by ``asyncio.wrap_future`` cost a
condition variable, two chained futures and one event-loop wake-up (a pipe write and a
context switch) per write: more CPU on a node than the SQL of a small PUT. A ``PendingWrite``
is settled by the committer under one lock per batch, and the event loops waiting on a batch
are woken once each (``settle``), however many writes the batch held.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")


class PendingWrite(Generic[_T]):
    """A queued write: ``await`` it on an event loop, or ``result()`` from a plain thread.

    Awaiting a write that is not committed yet parks the task on a loop future, woken by the
    committer's one call per batch; cancelling that task before the write's batch starts
    drops the write (``claim``), as cancelling a concurrent future did.
    """

    __slots__ = ("_done", "_error", "_event", "_lock", "_result", "_waiter")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock  # the index's: one acquisition settles a whole batch
        self._done = False
        self._result: Any = None
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._event: threading.Event | None = None

    def done(self) -> bool:
        return self._done

    def _outcome(self) -> _T:
        if self._error is not None:
            raise self._error
        result: _T = self._result
        return result

    def result(self, timeout: float | None = None) -> _T:
        """Block until committed (from a thread that is not the committer); its result."""
        with self._lock:
            if not self._done:
                self._event = event = threading.Event()
            else:
                event = None
        if event is not None and not event.wait(timeout):
            raise TimeoutError("index write not committed in time")
        return self._outcome()

    def __await__(self) -> Generator[Any, None, _T]:
        with self._lock:
            if not self._done:
                self._waiter = waiter = asyncio.get_running_loop().create_future()
            else:
                waiter = None
        if waiter is not None:
            yield from waiter.__await__()
        return self._outcome()

    def claim(self) -> bool:
        """Committer side, under the lock: False if the waiting task was cancelled already
        (the write is then dropped, settled as cancelled)."""
        if self._waiter is not None and self._waiter.cancelled():
            self._done = True
            self._error = asyncio.CancelledError()
            return False
        return True


@dataclass(slots=True)
class Job(Generic[_T]):
    fn: Callable[[Any], _T]  # of the writer's sqlite3.Connection
    durable: bool
    after: Callable[[_T], None] | None  # runs once the batch committed (e.g. unlink files)
    replayable: bool  # changes nothing outside the database: may run again after a rollback
    pending: PendingWrite[_T]


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():  # its task may have been cancelled meanwhile
            waiter.set_result(None)


def settle(
    lock: threading.Lock, outcomes: list[tuple[PendingWrite[Any], Any, BaseException | None]]
) -> None:
    """Committer side: record every outcome of a batch, then wake each waiting event loop once
    and each blocked thread."""
    wake: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    events: list[threading.Event] = []
    with lock:
        for pending, result, error in outcomes:
            pending._result = result
            pending._error = error
            pending._done = True
            waiter = pending._waiter
            if waiter is not None:
                wake.setdefault(waiter.get_loop(), []).append(waiter)
            elif pending._event is not None:
                events.append(pending._event)
    for loop, waiters in wake.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_wake, waiters)
    for event in events:
        event.set()
