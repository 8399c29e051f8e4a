"""``storage.sets.each``: one call per drive, concurrently; answers in drive order, failures as
values, cancellation never swallowed and never leaving calls behind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, cast

import pytest

from storage.drive import Drive
from storage.errors import DriveError
from storage.sets import each


class FakeDrive:
    def __init__(self, name: str, delay_s: float, fail: BaseException | None = None) -> None:
        self.name = name
        self.delay_s = delay_s
        self.fail = fail
        self.finished = False
        self.cancelled = False

    async def work(self) -> str:
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.fail is not None:
            raise self.fail
        self.finished = True
        return self.name


def drives(*fakes: FakeDrive) -> list[Drive]:
    return cast(list[Drive], list(fakes))


async def work(d: Drive) -> str:
    fake: FakeDrive = cast(Any, d)
    return await fake.work()


def test_answers_in_drive_order_with_failures_as_values() -> None:
    fakes = [FakeDrive("a", 0.02), FakeDrive("b", 0.0, DriveError("b down")), FakeDrive("c", 0.0)]
    results = asyncio.run(each(drives(*fakes), work))
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], DriveError)


def test_all_run_concurrently() -> None:
    """Every call is started before any is let finish (no timing: a gate they all wait on)."""
    started: list[str] = []

    async def go() -> list[str | BaseException]:
        gate = asyncio.Event()

        async def gated(d: Drive) -> str:
            started.append(d.name)
            await gate.wait()
            return d.name

        task = asyncio.create_task(each(drives(*[FakeDrive(str(i), 0) for i in range(8)]), gated))
        for _ in range(100):  # loop turns, not time: all 8 start within a few
            await asyncio.sleep(0)
        assert len(started) == 8, started
        gate.set()
        return await task

    assert asyncio.run(go()) == [str(i) for i in range(8)]


def test_cancelling_the_caller_cancels_every_call() -> None:
    fakes = [FakeDrive("fast", 0.0), FakeDrive("slow", 10.0), FakeDrive("slower", 20.0)]

    async def go() -> None:
        task = asyncio.create_task(each(drives(*fakes), work))
        while not fakes[0].finished:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert fakes[0].finished
    assert fakes[1].cancelled and fakes[2].cancelled


def test_a_cancelled_call_is_raised_not_returned() -> None:
    fakes = [FakeDrive("a", 0.0, asyncio.CancelledError()), FakeDrive("b", 10.0)]

    async def go() -> None:
        with pytest.raises(asyncio.CancelledError):
            await each(drives(*fakes), work)

    asyncio.run(go())
    assert fakes[1].cancelled


class FutureDrive:
    """A drive whose call is a future settled by the test (as a remote drive's is)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.future: asyncio.Future[str] | None = None

    def work(self) -> asyncio.Future[str]:
        self.future = asyncio.get_running_loop().create_future()
        return self.future


def future_work(d: Drive) -> asyncio.Future[str]:
    fake: FutureDrive = cast(Any, d)
    return fake.work()


def test_futures_are_awaited_as_they_are_with_failures_as_values() -> None:
    fakes = [FutureDrive("a"), FutureDrive("b"), FutureDrive("c")]

    async def go() -> list[str | BaseException]:
        task = asyncio.create_task(each(drives(*cast(Any, fakes)), future_work))
        await asyncio.sleep(0)
        assert all(f.future is not None for f in fakes)
        # Settled out of order; answers still come in drive order.
        cast(Any, fakes[2].future).set_result("c")
        cast(Any, fakes[1].future).set_exception(DriveError("b down"))
        cast(Any, fakes[0].future).set_result("a")
        return await task

    results = asyncio.run(go())
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], DriveError)


def test_cancelling_the_caller_cancels_every_pending_future() -> None:
    fakes = [FutureDrive("a"), FutureDrive("b"), FutureDrive("c")]

    async def go() -> None:
        task = asyncio.create_task(each(drives(*cast(Any, fakes)), future_work))
        await asyncio.sleep(0)
        cast(Any, fakes[0].future).set_result("a")
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert not cast(Any, fakes[0].future).cancelled()
    assert cast(Any, fakes[1].future).cancelled() and cast(Any, fakes[2].future).cancelled()


def test_futures_and_coroutines_mix_and_a_call_raising_at_once_is_a_value() -> None:
    ready = FutureDrive("ready")

    def mixed(d: Drive) -> Awaitable[str]:
        if d.name == "ready":
            return future_work(d)
        if d.name == "broken":
            raise DriveError("broken before it returned an awaitable")
        return work(d)

    async def go() -> list[str | BaseException]:
        task = asyncio.create_task(
            each(drives(cast(Any, ready), FakeDrive("broken", 0), FakeDrive("co", 0)), mixed)
        )
        await asyncio.sleep(0)
        cast(Any, ready.future).set_result("ready")
        return await task

    results = asyncio.run(go())
    assert results[0] == "ready" and results[2] == "co"
    assert isinstance(results[1], DriveError)


def test_items_other_than_drives() -> None:
    async def double(n: int) -> int:
        return 2 * n

    assert asyncio.run(each(range(3), double)) == [0, 2, 4]
