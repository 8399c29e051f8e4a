"""A drive on a storage node, reached over the node protocol: the same Drive protocol as a
local drive, so the object layer does not know the difference.

One aiohttp session (keep-alive pool) per gateway process is shared by all remote drives.
Every call has a deadline: a hung node (SIGSTOP, partition) becomes a DriveError after the
timeout, which the quorum logic treats like any failed drive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from storage import node_protocol as proto
from storage.drive import DriveInfo, ListRow, RowPage
from storage.errors import DriveError, StorageError
from storage.node_channel import Channels, NodeChannel
from storage.records import BucketRecord, ObjectRecord, PartRecord, UploadRecord
from storage.shard_connection import (
    ResponseError,
    ResponseHead,
    ShardConnection,
    ShardConnections,
    request_bytes,
)
from storage.shard_upload import ShardUpload
from storage.tcp import SocketFactory

_R = TypeVar("_R")
log = logging.getLogger(__name__)
_END = object()
LIVENESS_PROBES = 2  # unanswered probes in a row that make a node unresponsive
# Batches sent to one node and not answered yet; further calls wait for one of them to be
# answered and then go together (NodeClient.call).
BATCHES_IN_FLIGHT = 1
# Calls that read many rows (milliseconds) or shard bytes (up to CHANNEL_READ_BYTES): sent in
# batches of their own, which nothing waits for (a node answers a batch once all its calls are
# done), and which wait for nothing.
SLOW_METHODS = frozenset(
    {"list_page", "list_versions", "list_uploads", "list_buckets", "read_shard"}
)
_ERROR_BODY_LIMIT_BYTES = 64 * 1024


class NodeUnresponsive(TimeoutError):
    """A call timed out and the node did not answer its liveness probe either."""


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs twice as much
class _Call:
    """One drive call waiting for its node's next batch."""

    drive: str  # the drive's name on its node
    name: str  # node/drive, for messages
    method: str
    args: Any
    future: asyncio.Future[Any]
    decode: Callable[[Any], Any] | None  # the answer's wire form -> what the caller gets


@dataclass(frozen=True, slots=True)
class Timeouts:
    rpc_s: float = 3.0  # one index operation
    # One shard read, or one block of a shard write making no progress: a slow disk's allowance.
    # A node that does not answer its liveness probes either gets only rpc_s + 2 probe_s.
    io_s: float = 10.0
    probe_s: float = 1.0  # how often a node marked down is probed


class _Watch:
    """A timer on IO with node ``base`` that makes no progress: each rpc_s without an answer,
    probe the node; call ``fail`` with NodeUnresponsive (and mark the node down) when it does
    not answer the probe, with TimeoutError when io_s went by without an answer. A timer
    instead of a task per call (``NodeClient.bounded``, ``RemoteShardReader.read``)."""

    def __init__(
        self, client: NodeClient, base: str, fail: Callable[[BaseException], None]
    ) -> None:
        self._client = client
        self._base = base
        self._fail = fail
        self._deadline = time.monotonic() + client.timeouts.io_s
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            client.timeouts.rpc_s, self._stalled
        )
        self._probe: asyncio.Task[None] | None = None

    def _stalled(self) -> None:
        self._timer = None
        self._probe = asyncio.ensure_future(self._check())

    async def _check(self) -> None:
        client, base = self._client, self._base
        if not await client.answers(base):
            client.mark_down(base)
            self._fail(NodeUnresponsive(base))
        elif time.monotonic() > self._deadline:
            self._fail(TimeoutError(f"{base}: no progress in {client.timeouts.io_s} s"))
        else:
            self._probe = None
            self._timer = asyncio.get_running_loop().call_later(
                client.timeouts.rpc_s, self._stalled
            )

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None


class NodeClient:
    """The connection pool and signing for one gateway process."""

    def __init__(
        self,
        identity: proto.ClusterIdentity,
        timeouts: Timeouts = Timeouts(),
        tls: ssl.SSLContext | None = None,
        tcp_congestion: str = "",
    ) -> None:
        """``tcp_congestion``: the TCP congestion control of every connection to a node
        (storage.tcp; "" the system's default)."""
        self.identity = identity
        self.timeouts = timeouts
        self.tls = tls
        self.tcp_congestion = tcp_congestion
        self.scheme = "https" if tls is not None else "http"
        self._session: aiohttp.ClientSession | None = None
        self._probe_session: aiohttp.ClientSession | None = None
        # Nodes that timed out or refused connections: calls to them fail at once (instead of
        # each waiting out a timeout) until a background probe finds the node answering again.
        self.down: set[str] = set()
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._liveness: dict[str, asyncio.Future[bool]] = {}
        self._probed_at: dict[str, float] = {}
        # Run when a node marked down answers again (e.g. give it the buckets it missed).
        self.on_recovered: list[Callable[[], Awaitable[object]]] = []
        self._recoveries: set[asyncio.Task[object]] = set()
        # Calls to one node made in the same event-loop turn travel in one request: the 12
        # drives of a set live on 6 nodes, and concurrent requests coalesce further.
        self._pending: dict[str, list[_Call]] = {}
        self._in_flight: dict[str, int] = {}  # batches sent per node, not answered yet
        self._scheduled: set[str] = set()  # nodes whose pending calls flush this turn
        self._closed = False
        self._batches: set[asyncio.Task[None]] = set()
        self._channels = Channels(self._open_channel)
        self.shard_connections = ShardConnections(tls, tcp_congestion)  # GET's shard streams

    def ensure_up(self, base: str, name: str) -> None:
        if base in self.down:
            raise DriveError(f"{name}: node unreachable (marked down, probing)")

    def mark_down(self, base: str) -> None:
        if base in self.down:
            return
        self.down.add(base)
        self._channels.drop(base)  # batches waiting on a hung node fail now
        self._probes[base] = asyncio.create_task(self._probe(base))

    async def _probe(self, base: str) -> None:
        while True:
            await asyncio.sleep(self.timeouts.probe_s)
            try:
                async with asyncio.timeout(self.timeouts.probe_s):
                    async with self.session.get(base + "/_huimin/health/live") as resp:
                        if resp.status == 200:
                            break
            except (TimeoutError, aiohttp.ClientError, OSError):
                continue
        self.down.discard(base)
        self._probes.pop(base, None)
        for hook in self.on_recovered:
            task: asyncio.Task[object] = asyncio.create_task(_quiet(hook()))
            self._recoveries.add(task)
            task.add_done_callback(self._recoveries.discard)

    async def answers(self, base: str) -> bool:
        """Whether the node answers its liveness probe within probe_s: a busy disk does not
        stop that, a hung process or a cut link does. Concurrent callers share one probe."""
        probe = self._liveness.get(base)
        if probe is None or (probe.done() and time.monotonic() - self._probed_at[base] > 1.0):
            probe = asyncio.ensure_future(self._answers(base))
            self._liveness[base] = probe
            self._probed_at[base] = time.monotonic()
        return await asyncio.shield(probe)

    async def _answers(self, base: str) -> bool:
        """Two probes in a row must go unanswered: under overload this gateway's own event
        loop can stall past probe_s, and its timer then fires before the answer waiting in
        the socket is read. A hung node misses both (it costs probe_s more); a refused
        connection is an answer of its own (the process is gone)."""
        if self._probe_session is None:  # own connections: a pool full of streams is no hang
            self._probe_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True, ssl=self.tls or False)
            )
        for _ in range(LIVENESS_PROBES):
            try:
                async with asyncio.timeout(self.timeouts.probe_s):
                    async with self._probe_session.get(base + "/_huimin/health/live") as resp:
                        return resp.status == 200
            except TimeoutError:
                continue
            except (aiohttp.ClientError, OSError):
                return False
        return False

    def call(
        self,
        base: str,
        drive: str,
        name: str,
        method: str,
        args: Any,
        decode: Callable[[Any], Any] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue ``method(args)`` on ``drive`` of node ``base`` for this turn's batch; the
        future resolves to the result (in wire form, or ``decode``d when the answer comes:
        no coroutine per call to decode it in) or raises what the drive raised.

        While ``BATCHES_IN_FLIGHT`` batches to the node wait for their answers, the calls wait
        too and go as one batch when an answer comes: under load, concurrent requests share
        messages (the per-message Python and syscalls on both ends) and each drive's group
        commit gets their writes at once (one fsync for several PUTs)."""
        loop = asyncio.get_running_loop()
        pending = self._pending.get(base)
        if pending is None:
            pending = self._pending[base] = []
        if base not in self._scheduled and (
            self._in_flight.get(base, 0) < BATCHES_IN_FLIGHT or method in SLOW_METHODS
        ):
            self._scheduled.add(base)
            loop.call_soon(self._flush, base)
        call = _Call(drive, name, method, args, loop.create_future(), decode)
        pending.append(call)
        return call.future

    def _flush(self, base: str) -> None:
        self._scheduled.discard(base)
        calls = self._pending.pop(base, None)
        if not calls:  # already sent by an answer that came first
            return
        slow = [c for c in calls if c.method in SLOW_METHODS]
        if slow:
            self._start(base, slow, counted=False)
            calls = [c for c in calls if c.method not in SLOW_METHODS]
        if not calls:
            return
        if self._in_flight.get(base, 0) >= BATCHES_IN_FLIGHT:  # flushed for a listing call
            self._pending[base] = calls
            return
        self._in_flight[base] = self._in_flight.get(base, 0) + 1
        self._start(base, calls, counted=True)

    def _start(self, base: str, calls: list[_Call], counted: bool) -> None:
        task = asyncio.create_task(self._send(base, calls, counted))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    def _answered(self, base: str) -> None:
        """A batch to ``base`` ended: send what waited for it (docs/benchmarks.md, "The next
        batch at the end of the turn")."""
        self._in_flight[base] -= 1
        if base not in self._pending or base in self._scheduled:
            return
        if self._closed:  # shutting down: nothing is sent any more
            for c in self._pending.pop(base):
                _settle(c.future, exc=DriveError(f"{c.name}: node client closed"))
            return
        # Sent at the end of this turn, not now: the requests this answer woke (and any other
        # woken in the same turn) add their next calls to the same batch first.
        self._scheduled.add(base)
        asyncio.get_running_loop().call_soon(self._flush, base)

    async def _send(self, base: str, calls: list[_Call], counted: bool) -> None:
        """Send one batch and settle its calls; then (``counted``) send what waited for it."""
        try:
            if base in self.down:  # marked down while these calls waited
                for c in calls:
                    _settle(c.future, exc=DriveError(f"{c.name}: node unreachable (marked down)"))
                return
            wire = [(c.drive, c.method, c.args) for c in calls]
            channel = self._channels.ready(base)  # open: no coroutine to get it
            try:
                results = await self.bounded(
                    base, channel.call(wire) if channel is not None else self._request(base, wire)
                )
            except Exception as exc:
                if _broken(exc):
                    self.mark_down(base)
                for c in calls:
                    _settle(c.future, exc=_as_storage_error(exc, c.name))
                return
            except BaseException:  # cancelled (shutdown): callers must not wait forever either
                for c in calls:
                    _settle(c.future, exc=DriveError(f"{c.name}: batch cancelled"))
                raise
            _settle_answers(calls, results)
        finally:
            if counted:
                self._answered(base)

    async def _request(self, base: str, wire: list[tuple[str, str, Any]]) -> list[Any]:
        channel = await self._channels.get(base)
        return await channel.call(wire)

    async def _open_channel(self, base: str) -> NodeChannel:
        path = proto.PREFIX + "/channel"
        # Callers wait under ``bounded`` (a cut link fails them after rpc_s and the probes);
        # this only ends an attempt they all gave up on, so a recovered node gets a new one.
        async with asyncio.timeout(self.timeouts.io_s):
            return await NodeChannel.open(self.session, base + path, self.headers("GET", path))

    async def bounded(self, base: str, aw: Awaitable[_R]) -> _R:
        """Await ``aw`` (IO with node ``base``) while the node is alive: every rpc_s without an
        answer, probe its liveness; a node that does not answer the probe either is marked
        down (NodeUnresponsive: a hung or cut-off node costs one rpc_s + 2 probes), a live but
        overloaded node gets up to io_s (TimeoutError after that).

        ``aw`` runs in the caller's task under a timer (``_Watch``), which cancels it to fail
        it, as ``asyncio.timeout`` does: a task of its own and ``asyncio.wait`` per call cost
        ~20 us, for every batch of drive calls."""
        task = asyncio.current_task()
        assert task is not None
        failures: list[BaseException] = []

        def fail(exc: BaseException) -> None:
            failures.append(exc)
            task.cancel()

        watch = _Watch(self, base, fail)
        try:
            result = await aw
        except asyncio.CancelledError:
            if failures and task.uncancel() == 0:
                raise failures[0] from None
            raise
        finally:
            watch.disarm()
        if failures:  # failed as the answer came: the answer wins
            task.uncancel()
        return result

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    # Shard uploads hold a connection each for their whole length: no per-node
                    # cap, or uploads beyond it would wait for a connection and time out.
                    limit=0,
                    limit_per_host=0,
                    force_close=False,
                    ssl=self.tls or False,
                    socket_factory=SocketFactory(self.tcp_congestion),
                ),
                # No connect deadline of its own: a stalled event loop (overload) would fire
                # it on a live node. Every request runs under ``bounded``, whose liveness
                # probe tells a slow connect from a cut link.
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        self._closed = True
        for task in [*self._probes.values(), *self._batches]:
            task.cancel()
        await self._channels.close()
        self.shard_connections.close()
        if self._session is not None:
            await self._session.close()
        if self._probe_session is not None:
            await self._probe_session.close()

    def headers(self, method: str, path_qs: str) -> dict[str, str]:
        return proto.sign_headers(self.identity, method, path_qs, int(time.time() * 1000))


class RemoteShardWriter:
    """Streams one shard to the node in a single PUT; ``finish`` ends the body and waits for
    the node's fsync. Writes block (bounded queue) while the node is slower than the encoder.

    A ``write``'s pieces go out as they are, each in a write call of aiohttp's: a frame's
    16-byte hash costs a send of its own, less than the copy of its payload that joining the
    two would cost. With ``size_bytes`` known the body has a Content-Length (no chunked
    framing, and the node can tell a complete shard from a cut-off one); writing more or
    fewer bytes is a DriveError.
    """

    def __init__(self, drive: RemoteDrive, data_id: str, size_bytes: int | None = None) -> None:
        self._drive = drive
        self._data_id = data_id
        self._size_bytes = size_bytes
        self._written = 0
        # One block's pieces waiting while aiohttp sends the previous one: with 4 MiB blocks
        # that is ~1 MiB per shard stream, ~12 MiB per upload (EC 8+4).
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1)
        self._task = asyncio.create_task(self._send())

    async def _body(self) -> AsyncIterator[bytes | memoryview]:
        while True:
            pieces = await self._queue.get()
            if pieces is _END:
                return
            assert isinstance(pieces, tuple)
            for piece in pieces:
                yield piece

    async def _send(self) -> None:
        path = self._drive.path("shard", self._data_id)
        client = self._drive.client
        headers = client.headers("PUT", path)
        if self._size_bytes is not None:
            headers["Content-Length"] = str(self._size_bytes)
        async with client.session.put(
            self._drive.base + path, data=self._body(), headers=headers
        ) as resp:
            await self._drive.check(resp)

    async def write(self, pieces: Sequence[bytes | memoryview]) -> None:
        queued = tuple(pieces)
        self._written += sum(map(len, queued))
        if self._size_bytes is not None and self._written > self._size_bytes:
            raise DriveError(f"{self._drive.name}: shard longer than {self._size_bytes} bytes")
        if self._task.done():
            await self._failed()
        if not self._queue.full():
            self._queue.put_nowait(queued)  # the sender keeps up: no deadline to arm
            return
        try:
            await self._drive.client.bounded(self._drive.base, self._queue.put(queued))
        except TimeoutError:
            raise DriveError(f"{self._drive.name}: shard write timed out") from None

    def _error(self, exc: Exception) -> DriveError:
        """The DriveError for a failed upload; a broken connection marks the node down."""
        if _broken(exc):
            self._drive.client.mark_down(self._drive.base)
        return DriveError(f"{self._drive.name}: {exc!r}")

    async def _failed(self) -> None:
        try:
            await self._task
        except StorageError:
            raise
        except Exception as exc:
            raise self._error(exc) from exc
        raise DriveError(f"{self._drive.name}: shard upload ended early")

    async def finish(self) -> None:
        if self._size_bytes is not None and self._written != self._size_bytes:
            # Ending the body early would leave the node waiting for the declared length.
            raise DriveError(
                f"{self._drive.name}: shard ended at {self._written} of {self._size_bytes} bytes"
            )
        try:
            await self._drive.client.bounded(self._drive.base, self._queue.put(_END))
            await self._drive.client.bounded(self._drive.base, asyncio.shield(self._task))
        except TimeoutError:
            raise DriveError(f"{self._drive.name}: shard fsync timed out") from None
        except StorageError:
            raise
        except Exception as exc:
            raise self._error(exc) from exc

    async def abort(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        with contextlib.suppress(Exception):
            await self._drive.call_raw("DELETE", self._drive.path("shard", self._data_id))


class RemoteShardReader:
    """One shard range streamed by the node in a single response, read block by block into
    fresh buffers (``storage.shard_connection``: no copy besides the kernel's).

    The socket is read only while a read waits (TCP's window pushes back on the node between
    reads): memory per stream is the block being read. A read that waits longer than rpc_s
    arms the node's liveness probe, as ``NodeClient.bounded`` does, but with a timer instead
    of a task per read: a node that does not answer the probe fails the read at once (and is
    marked down), a live one gets up to io_s.
    """

    def __init__(self, drive: RemoteDrive, conn: ShardConnection, length: int) -> None:
        self._drive = drive
        self._conn = conn
        self._left = length

    async def read(self, n: int) -> bytes | memoryview:
        if n > self._left:
            raise DriveError(f"{self._drive.name}: read past the shard range")
        buffer = memoryview(bytearray(n))
        watch = _Watch(self._drive.client, self._drive.base, self._conn.fail)
        try:
            await self._conn.read_into(buffer)
        except (ResponseError, OSError) as exc:  # TimeoutError and NodeUnresponsive too
            raise DriveError(f"{self._drive.name}: shard stream broke: {exc!r}") from exc
        finally:
            watch.disarm()
        self._left -= n
        return buffer

    async def close(self) -> None:
        # Read to its end, the connection serves the next stream; else it is cut.
        self._drive.client.shard_connections.put(self._drive.address, self._conn)


class RemoteDrive:
    def __init__(self, client: NodeClient, address: str, node: str, drive: str) -> None:
        self.client = client
        self.base = f"{client.scheme}://{address}"
        self.address = address
        self.node = node
        self.drive = drive
        self._name = f"{node}/{drive}"  # in every call (for its errors): made once

    @property
    def name(self) -> str:
        return self._name

    def path(self, kind: str, tail: str) -> str:
        return f"{proto.PREFIX}/{kind}/{self.drive}/{tail}"

    async def check(self, resp: aiohttp.ClientResponse) -> Any:
        if resp.status == 200:
            if resp.content_type == "application/json":
                return (await resp.json())["result"]
            return await resp.read()
        raise await _response_error(resp, self.name)

    async def call_raw(self, method: str, path: str, body: Any = None) -> Any:
        self.client.ensure_up(self.base, self.name)

        async def request() -> Any:
            async with self.client.session.request(
                method, self.base + path, json=body, headers=self.client.headers(method, path)
            ) as resp:
                return await self.check(resp)

        try:
            return await self.client.bounded(self.base, request())
        except StorageError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._unreachable(exc)
            raise DriveError(f"{self.name}: {exc!r}") from exc

    def _unreachable(self, exc: BaseException) -> None:
        if _broken(exc):
            self.client.mark_down(self.base)

    def _rpc(
        self, method: str, decode: Callable[[Any], _R], args: dict[str, Any]
    ) -> asyncio.Future[_R]:
        """``method`` on the node with ``args`` in wire form (``proto.to_wire``): the call's
        future itself (the answer decoded by the batch), no coroutine or task around it."""
        if self.base in self.client.down:
            failed: asyncio.Future[_R] = asyncio.get_running_loop().create_future()
            failed.set_exception(
                DriveError(f"{self.name}: node unreachable (marked down, probing)")
            )
            return failed
        return self.client.call(self.base, self.drive, self._name, method, args, decode)

    # Drive protocol ---------------------------------------------------------------------------

    def info(self) -> asyncio.Future[DriveInfo]:
        return self._rpc("info", proto.drive_info, {})

    def make_bucket(self, bucket: BucketRecord) -> asyncio.Future[None]:
        return self._rpc("make_bucket", _none, {"bucket": proto.to_wire(bucket)})

    def get_bucket(self, name: str) -> asyncio.Future[BucketRecord]:
        return self._rpc("get_bucket", proto.bucket_record, {"name": name})

    def list_buckets(self) -> asyncio.Future[list[BucketRecord]]:
        return self._rpc("list_buckets", _each(proto.bucket_record), {})

    def delete_bucket(self, name: str) -> asyncio.Future[None]:
        return self._rpc("delete_bucket", _none, {"name": name})

    async def create_shard(
        self, data_id: str, size_bytes: int | None = None
    ) -> RemoteShardWriter | ShardUpload:
        """A plain-TCP shard of known size is sent from worker threads (``ShardUpload``);
        else through aiohttp (TLS, or a size not known in advance)."""
        self.client.ensure_up(self.base, self.name)
        if size_bytes is not None and self.client.tls is None:
            return ShardUpload(self, data_id, size_bytes)
        return RemoteShardWriter(self, data_id, size_bytes)

    async def read_shard(self, data_id: str, offset: int, length: int) -> bytes:
        if length <= proto.CHANNEL_READ_BYTES:
            return await self._rpc(
                "read_shard", _bytes, {"data_id": data_id, "offset": offset, "length": length}
            )
        path = self.path("shard", data_id) + f"?offset={offset}&length={length}"
        self.client.ensure_up(self.base, self.name)

        async def fetch() -> Any:
            async with self.client.session.get(
                self.base + path, headers=self.client.headers("GET", path)
            ) as resp:
                return await self.check(resp)

        try:
            data = await self.client.bounded(self.base, fetch())
        except StorageError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._unreachable(exc)
            raise DriveError(f"{self.name}: {exc!r}") from exc
        assert isinstance(data, bytes)
        return data

    async def open_shard(self, data_id: str, offset: int, length: int) -> RemoteShardReader:
        path = self.path("shard", data_id) + f"?offset={offset}&length={length}"
        self.client.ensure_up(self.base, self.name)
        conns = self.client.shard_connections

        async def start() -> tuple[ShardConnection, ResponseHead]:
            while True:
                conn, reused = await conns.get(self.address)
                request = request_bytes(self.address, path, self.client.headers("GET", path))
                try:
                    return conn, await conn.head(request)
                except (ResponseError, OSError):
                    conn.close()
                    if not reused:  # a kept-alive connection may have been closed by the node
                        raise
                except BaseException:
                    conn.close()
                    raise

        try:
            conn, head = await self.client.bounded(self.base, start())
            if head.status != 200:
                raise await _shard_error(conn, head, self.name)
        except StorageError:
            raise
        except (TimeoutError, ResponseError, OSError) as exc:
            self._unreachable(exc)
            raise DriveError(f"{self.name}: {exc!r}") from exc
        return RemoteShardReader(self, conn, min(head.content_length, length))

    def commit_object(
        self, record: ObjectRecord, staged: Sequence[str], shard: bytes | None = None
    ) -> asyncio.Future[bool]:
        return self._rpc(
            "commit_object",
            bool,
            {"record": proto.object_wire(record), "staged": list(staged), "shard": shard},
        )

    def get_versions(
        self, bucket: str, key: str, inline: bool = True
    ) -> asyncio.Future[list[ObjectRecord]]:
        args: dict[str, Any] = {"bucket": bucket, "key": key}
        if not inline:  # said only when False: a read's message stays as it was
            args["inline"] = False
        return self._rpc("get_versions", _each(proto.object_record), args)

    def prune_versions(
        self, bucket: str, key: str, before: tuple[int, str], durable: bool
    ) -> asyncio.Future[None]:
        return self._rpc(
            "prune_versions",
            _none,
            {"bucket": bucket, "key": key, "before": list(before), "durable": durable},
        )

    def delete_version(self, bucket: str, key: str, version_id: str) -> asyncio.Future[None]:
        return self._rpc(
            "delete_version", _none, {"bucket": bucket, "key": key, "version_id": version_id}
        )

    def list_versions(
        self, bucket: str, prefix: str, after: str, limit: int
    ) -> asyncio.Future[list[ListRow]]:
        return self._rpc(
            "list_versions",
            proto.list_rows,
            {"bucket": bucket, "prefix": prefix, "after": after, "limit": limit},
        )

    def list_page(
        self, bucket: str, prefix: str, after: str, limit: int, rows: bool, delimiter: str = ""
    ) -> asyncio.Future[RowPage]:
        return self._rpc(
            "list_page",
            proto.row_page,
            {
                "bucket": bucket,
                "prefix": prefix,
                "after": after,
                "limit": limit,
                "rows": rows,
                "delimiter": delimiter,
            },
        )

    def put_upload(self, upload: UploadRecord) -> asyncio.Future[None]:
        return self._rpc("put_upload", _none, {"upload": proto.to_wire(upload)})

    def get_upload(self, upload_id: str) -> asyncio.Future[UploadRecord]:
        return self._rpc("get_upload", proto.upload_record, {"upload_id": upload_id})

    def list_uploads(
        self, bucket: str, prefix: str, after: tuple[str, str], limit: int
    ) -> asyncio.Future[list[UploadRecord]]:
        return self._rpc(
            "list_uploads",
            _each(proto.upload_record),
            {"bucket": bucket, "prefix": prefix, "after": list(after), "limit": limit},
        )

    def commit_part(self, part: PartRecord) -> asyncio.Future[None]:
        return self._rpc("commit_part", _none, {"part": proto.to_wire(part)})

    def list_parts(self, upload_id: str) -> asyncio.Future[list[PartRecord]]:
        return self._rpc("list_parts", _each(proto.part_record), {"upload_id": upload_id})

    def complete_upload(self, record: ObjectRecord, upload_id: str) -> asyncio.Future[bool]:
        return self._rpc(
            "complete_upload", bool, {"record": proto.object_wire(record), "upload_id": upload_id}
        )

    async def abort_upload(self, upload_id: str) -> None:
        await self._rpc("abort_upload", _none, {"upload_id": upload_id})


def _broken(exc: BaseException) -> bool:
    """A refused or broken connection: the node is down. Not a timeout, not even aiohttp's
    connection timeouts (which are ClientConnectionErrors too): ``bounded`` already marked an
    unresponsive node down after its liveness probe, and a slow but live node is not."""
    if isinstance(exc, TimeoutError):
        return False
    return isinstance(exc, aiohttp.ClientConnectionError | OSError)


def _as_storage_error(exc: Exception, name: str) -> StorageError:
    """What a caller of a failed batch sees: the node's own StorageError, else a DriveError."""
    if isinstance(exc, StorageError):
        return exc
    return DriveError(f"{name}: {exc!r}")


def _settle_answers(calls: Sequence[_Call], results: Sequence[Any]) -> None:
    """Each call's future gets its answer: the decoded result, or the drive's error."""
    for c, result in zip(calls, results, strict=True):
        if c.future.done():  # the caller was cancelled: nothing to decode
            continue
        if "error" in result:
            c.future.set_exception(proto.error_from(result, c.name))
        elif c.decode is None:
            c.future.set_result(result["result"])
        else:
            try:
                value = c.decode(result["result"])
            except Exception as exc:  # a malformed answer fails this call only
                c.future.set_exception(exc)
            else:
                c.future.set_result(value)


def _settle(future: asyncio.Future[Any], result: Any = None, exc: Exception | None = None) -> None:
    if future.done():  # the caller was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


async def _response_error(resp: aiohttp.ClientResponse, name: str) -> StorageError:
    try:
        doc = await resp.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        doc = {"error": "DriveError", "message": f"HTTP {resp.status}"}
    return proto.error_from(doc, name)


async def _shard_error(conn: ShardConnection, head: ResponseHead, name: str) -> StorageError:
    """The error a node answered instead of a shard stream (a small JSON document)."""
    doc: Any = {"error": "DriveError", "message": f"HTTP {head.status}"}
    try:
        if head.content_length <= _ERROR_BODY_LIMIT_BYTES:
            body = memoryview(bytearray(head.content_length))
            await conn.read_into(body)
            doc = json.loads(bytes(body))
    except (ValueError, ResponseError, OSError):
        pass
    finally:
        conn.close()
    return proto.error_from(doc, name)


async def _quiet(aw: Awaitable[object]) -> object:
    try:
        return await aw
    except Exception as exc:  # a recovery step failing is retried at the next recovery
        log.warning("node recovery step failed: %s", exc)
        return None


def _bytes(result: Any) -> bytes:
    if not isinstance(result, bytes):
        raise DriveError(f"expected shard bytes, got {type(result).__name__}")
    return result


def _none(_: Any) -> None:
    return None


def _each(decode: Callable[[Any], _R]) -> Callable[[Any], list[_R]]:
    return lambda items: [decode(item) for item in items]
