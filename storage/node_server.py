"""The storage node's HTTP server: serves this node's local drives over the node protocol.

Every handler authenticates the request (storage.node_protocol.check_request) and turns domain
errors into ``{"error": <class name>, "message": ...}`` so the gateway's RemoteDrive can raise
the same exception the local drive raised.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from storage import node_protocol as proto
from storage.errors import DriveError, DriveNotFound, StorageError
from storage.file_send import sendfile_range
from storage.group_commit import PendingWrite
from storage.local_drive import LocalDrive, LocalShardReader, LocalShardWriter
from storage.node_channel import MAX_MESSAGE_BYTES
from storage.own_thread import in_own_thread

log = logging.getLogger("huimin.node")

_WRITE_BYTES = 1024 * 1024  # received bytes per thread hop to the drive
DIRECT_MIN_BYTES = 1024 * 1024  # shard bodies from this size are read off the socket directly
_SEND_BYTES = 2 * 1024 * 1024  # shard bytes per read while streaming a range (under TLS)
SEND_THREADS = 32  # shard ranges being sendfile'd at once, per node
SHARD_IDLE_TIMEOUT_S = 120.0
Rpc = Callable[[LocalDrive, dict[str, Any]], Awaitable[Any]]
Lookup = Callable[[LocalDrive, dict[str, Any]], Any]
# Point reads done on the event loop (LocalDrive._lookup): answered without a task each.
# Each answers its result ready for a message (object records as lists of their field values,
# ``proto.object_wire``'s form: a version goes from its index row to the message without a
# dataclass in between).
LOOKUPS: dict[str, Lookup] = {
    "get_versions": lambda d, a: d.lookup_version_values(
        a["bucket"], a["key"], a.get("inline", True)
    ),
    "get_bucket": lambda d, a: proto.to_wire(d.lookup_bucket(a["name"])),
}

# Index writes queued on the spot (LocalDrive.start_*) and awaited in the message's own task:
# no task per call. None: this call takes the general path (an ``Rpc``).
Start = Callable[[LocalDrive, dict[str, Any]], PendingWrite[Any] | None]


def _start_commit_object(d: LocalDrive, a: dict[str, Any]) -> PendingWrite[bool] | None:
    if a["staged"] or a.get("shard") is not None:  # shard files to publish or clean up
        return None
    return d.start_commit_values(a["record"])


def _start_prune_versions(d: LocalDrive, a: dict[str, Any]) -> PendingWrite[list[str]]:
    return d.start_prune_versions(
        a["bucket"], a["key"], (a["before"][0], a["before"][1]), a["durable"]
    )


# Method -> (how to queue it, whether its answer is the write's result or None as the drive's
# coroutine returns: prune_versions' result is the data ids it unlinks).
STARTS: dict[str, tuple[Start, bool]] = {
    "commit_object": (_start_commit_object, True),
    "prune_versions": (_start_prune_versions, False),
}


def _rpc_table() -> dict[str, Rpc]:
    """Method name -> call on the local drive with decoded JSON arguments."""

    async def commit_object(d: LocalDrive, a: dict[str, Any]) -> Any:
        shard = a.get("shard")
        if shard is not None and not isinstance(shard, bytes):
            raise TypeError("shard must be bytes")
        return await d.commit_object(proto.object_record(a["record"]), a["staged"], shard)

    async def complete_upload(d: LocalDrive, a: dict[str, Any]) -> Any:
        return await d.complete_upload(proto.object_record(a["record"]), a["upload_id"])

    async def prune_versions(d: LocalDrive, a: dict[str, Any]) -> Any:
        before = (a["before"][0], a["before"][1])
        return await d.prune_versions(a["bucket"], a["key"], before, a["durable"])

    async def list_versions(d: LocalDrive, a: dict[str, Any]) -> Any:
        rows = await d.list_versions(a["bucket"], a["prefix"], a["after"], a["limit"])
        return proto.ListRows(rows)  # compact rows: a listing page is 1000 of them

    async def list_page(d: LocalDrive, a: dict[str, Any]) -> Any:
        delimiter = a.get("delimiter", "")  # absent from an older gateway: a flat page
        return await d.list_page(
            a["bucket"], a["prefix"], a["after"], a["limit"], a["rows"], delimiter
        )

    async def read_shard(d: LocalDrive, a: dict[str, Any]) -> Any:
        offset, length = a["offset"], a["length"]
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0:
            raise ValueError(f"bad shard range {offset!r}+{length!r}")
        if not 0 <= length <= proto.CHANNEL_READ_BYTES:
            raise ValueError(f"{length} bytes is more than a channel read carries")
        return await d.read_shard(a["data_id"], offset, length)

    async def list_uploads(d: LocalDrive, a: dict[str, Any]) -> Any:
        after = (a["after"][0], a["after"][1])
        return await d.list_uploads(a["bucket"], a["prefix"], after, a["limit"])

    return {
        "info": lambda d, a: d.info(),
        "make_bucket": lambda d, a: d.make_bucket(proto.bucket_record(a["bucket"])),
        "get_bucket": lambda d, a: d.get_bucket(a["name"]),
        "list_buckets": lambda d, a: d.list_buckets(),
        "delete_bucket": lambda d, a: d.delete_bucket(a["name"]),
        "commit_object": commit_object,
        "get_versions": lambda d, a: d.get_versions(a["bucket"], a["key"], a.get("inline", True)),
        "read_shard": read_shard,
        "prune_versions": prune_versions,
        "delete_version": lambda d, a: d.delete_version(a["bucket"], a["key"], a["version_id"]),
        "list_versions": list_versions,
        "list_page": list_page,
        "put_upload": lambda d, a: d.put_upload(proto.upload_record(a["upload"])),
        "get_upload": lambda d, a: d.get_upload(a["upload_id"]),
        "list_uploads": list_uploads,
        "commit_part": lambda d, a: d.commit_part(proto.part_record(a["part"])),
        "list_parts": lambda d, a: d.list_parts(a["upload_id"]),
        "complete_upload": complete_upload,
        "abort_upload": lambda d, a: d.abort_upload(a["upload_id"]),
    }


async def _receive_shard(request: web.Request, writer: LocalShardWriter) -> int:
    """Copy the request body to ``writer``; the number of bytes received.

    The body arrives as the pieces aiohttp parsed (one per socket read, up to 256 KiB): they
    are taken as they are (``readchunk`` does not join them) and handed to the drive in one
    thread hop per ``_WRITE_BYTES``: a hop per piece cost more CPU than the bytes themselves.
    aiohttp keeps reading the socket (up to ``read_bufsize``) while a write is in the thread.
    """
    pending: list[bytes] = []
    pending_bytes = 0
    received = 0
    while True:
        # A gateway that vanished behind a partition never closes the stream: give up after a
        # generous idle time (a block arrives per MiB of a slow client's data).
        async with asyncio.timeout(SHARD_IDLE_TIMEOUT_S):
            chunk, _ = await request.content.readchunk()
        if chunk:
            pending.append(chunk)
            pending_bytes += len(chunk)
        elif request.content.at_eof():
            break
        if pending_bytes >= _WRITE_BYTES:
            await writer.write(pending)
            received += pending_bytes
            pending = []
            pending_bytes = 0
    if pending:
        await writer.write(pending)
        received += pending_bytes
    return received


async def _take_shard(request: web.Request, writer: LocalShardWriter, length: int) -> int:
    """Receive a ``length``-byte body like ``_receive_shard``, but read what aiohttp has not
    read yet straight from the socket into the shard's aligned buffer (storage.direct_file),
    in a thread of its own: no HTTP parser, stream reader or thread hop per piece. The parser
    never sees those bytes, so the connection cannot carry another request: the caller's
    response must close it."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    assert transport is not None and sock is not None  # checked by _taken
    buffered: list[bytes] = []
    while chunk := request.content.read_nowait():  # what aiohttp has read already
        buffered.append(chunk)
    # Synchronously after draining (which may have resumed reading): from here on only the
    # thread reads this socket.
    transport.pause_reading()
    sock_fd = os.dup(sock.fileno())  # the thread's own: closing the transport frees nothing
    try:
        received = sum(map(len, buffered))
        if buffered:
            await writer.write(buffered)
    except BaseException:
        os.close(sock_fd)
        raise
    received += await in_own_thread(
        functools.partial(writer.receive_from, sock_fd, length - received, SHARD_IDLE_TIMEOUT_S)
    )
    request.content.feed_eof()  # nothing for aiohttp to drain after the response
    return received


def _taken(request: web.Request) -> int | None:
    """The body length if this request's body can be read off the socket by ``_take_shard``:
    plain TCP (not TLS), a known length, at least ``DIRECT_MIN_BYTES`` (a smaller shard keeps
    its keep-alive connection)."""
    length = request.content_length
    if length is None or length < DIRECT_MIN_BYTES:
        return None
    return length if _plain_tcp(request) else None


async def _send_range(resp: web.StreamResponse, reader: LocalShardReader) -> None:
    """Write the reader's range to ``resp``, reading the next chunk while one is sent."""
    left = reader.length
    reading = asyncio.ensure_future(reader.read(min(_SEND_BYTES, left))) if left else None
    try:
        while reading is not None:
            data = await reading
            left -= len(data)
            reading = asyncio.ensure_future(reader.read(min(_SEND_BYTES, left))) if left else None
            # A gateway gone behind a partition never reads again: give up after a while.
            async with asyncio.timeout(SHARD_IDLE_TIMEOUT_S):
                await resp.write(data)
    finally:
        if reading is not None:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)


def _plain_tcp(request: web.Request) -> bool:
    """Whether shard bytes may go straight from the file to the socket (not under TLS)."""
    transport = request.transport
    return (
        transport is not None
        and transport.get_extra_info("socket") is not None
        and transport.get_extra_info("ssl_object") is None
    )


def _failed(exc: Exception, what: str) -> dict[str, Any]:
    """A drive call's error as its answer: the drive's own errors as they are, bad arguments as
    a DriveError, and anything else logged with its traceback and answered all the same (its
    batch must not wait out the gateway's io_s)."""
    if isinstance(exc, StorageError):
        return proto.error_doc(exc)
    if isinstance(exc, ValueError | KeyError | TypeError):
        return proto.error_doc(DriveError(f"bad request: {exc!r}"))
    log.error("drive call %s failed", what, exc_info=exc)
    return proto.error_doc(DriveError(f"{what} failed: {exc!r}"))


def _outcome(lookup: Lookup, drive: LocalDrive, args: dict[str, Any]) -> dict[str, Any]:
    """``NodeServer._call``'s answer document for a point read, computed right here."""
    try:
        return {"result": lookup(drive, args)}
    except Exception as exc:
        return _failed(exc, "point read")


async def _written(drive: LocalDrive, pending: PendingWrite[Any], answered: bool) -> dict[str, Any]:
    """``NodeServer._call``'s answer document for a write queued by a ``STARTS`` entry."""
    try:
        result = await drive.written(pending)
        return {"result": proto.to_wire(result) if answered else None}
    except Exception as exc:
        return _failed(exc, "write")


def _error(exc: BaseException, status: int) -> web.Response:
    return web.json_response(proto.error_doc(exc), status=status)


class NodeServer:
    def __init__(
        self, name: str, drives: Mapping[str, LocalDrive], identity: proto.ClusterIdentity
    ) -> None:
        self.name = name
        self.drives = dict(drives)
        self.identity = identity
        self.rpcs = _rpc_table()
        self._channels: set[web.WebSocketResponse] = set()
        # Threads that sendfile shard ranges (each waits on a slow gateway for at most
        # file_send's poll wait, then hands back): not the drives' IO pool.
        self._send_pool = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="shard-send")

    def _drive(self, request: web.Request) -> LocalDrive:
        drive = self.drives.get(request.match_info["drive"])
        if drive is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "DriveError", "message": "no drive"}))
        return drive

    @web.middleware
    async def authenticate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(proto.PREFIX):
            try:
                proto.check_request(
                    self.identity,
                    request.method,
                    request.path_qs,
                    request.headers,
                    int(time.time() * 1000),
                )
            except proto.WrongTopology as exc:
                return web.json_response(
                    {"error": "WrongTopology", "message": str(exc)}, status=409
                )
            except proto.Unauthorized as exc:
                log.warning("refused node request: %s", exc)
                return web.json_response({"error": "Unauthorized", "message": str(exc)}, status=401)
        return await handler(request)

    async def channel(self, request: web.Request) -> web.StreamResponse:
        """A gateway's RPC channel (authenticated by its signed upgrade request): each message
        is a batch of drive calls, run concurrently (one group commit per drive can take them
        all) and answered when done, out of order, by batch id. A batch of point reads only
        is answered right here, before the next message is read."""
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, compress=False)
        await ws.prepare(request)
        running: set[asyncio.Task[None]] = set()
        self._channels.add(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY:
                    break
                try:
                    batch_id, calls = proto.decode_batch(proto.decode_message(msg.data))
                except ValueError as exc:
                    log.warning("malformed batch on node channel: %s", exc)
                    await ws.close()
                    break
                looked_up = self._look_up(calls)
                if looked_up is not None:  # point reads only (a GET's, a HEAD's): no task
                    if not ws.closed:
                        await ws.send_bytes(proto.encode_results(looked_up, batch_id))
                    continue
                task = asyncio.create_task(self._answer_calls(ws, batch_id, calls))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            self._channels.discard(ws)
        # Calls already running finish (their answers are lost with the gateway's connection).
        return ws

    async def _close_channels(self, app: web.Application) -> None:
        """At shutdown: channels are long-lived, the server would otherwise wait them out."""
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY) for ws in list(self._channels)),
            return_exceptions=True,
        )

    async def _stop_send_pool(self, app: web.Application) -> None:
        self._send_pool.shutdown(wait=False, cancel_futures=True)

    def _look_up(self, calls: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]] | None:
        """The answers of a batch of point reads (``LOOKUPS``), or None if it holds another
        kind of call."""
        results = []
        for drive_name, method, args in calls:
            lookup = LOOKUPS.get(method)
            drive = self.drives.get(drive_name)
            if lookup is None or drive is None:
                return None
            results.append(_outcome(lookup, drive, args))
        return results

    async def _answer_calls(
        self, ws: web.WebSocketResponse, batch_id: int, calls: list[tuple[str, str, dict[str, Any]]]
    ) -> None:
        results: list[dict[str, Any]] = []
        later: list[int] = []
        writes: list[tuple[int, LocalDrive, PendingWrite[Any], bool]] = []
        for i, (drive_name, method, args) in enumerate(calls):
            drive = self.drives.get(drive_name)
            if drive is not None:
                lookup = LOOKUPS.get(method)
                if lookup is not None:
                    results.append(_outcome(lookup, drive, args))
                    continue
                start = STARTS.get(method)
                if start is not None:
                    try:
                        pending = start[0](drive, args)
                    except (ValueError, KeyError, TypeError) as exc:
                        results.append(proto.error_doc(DriveError(f"bad request: {exc!r}")))
                        continue
                    if pending is not None:
                        results.append({})
                        writes.append((i, drive, pending, start[1]))
                        continue
            results.append({})
            later.append(i)
        if later:  # while the writes queued above commit
            done = await asyncio.gather(*(self._call(*calls[i]) for i in later))
            for i, result in zip(later, done, strict=True):
                results[i] = result
        for i, drive, pending, answered in writes:
            results[i] = await _written(drive, pending, answered)
        if not ws.closed:
            await ws.send_bytes(proto.encode_results(results, batch_id))

    async def _call(self, drive_name: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
        drive = self.drives.get(drive_name)
        call = self.rpcs.get(method)
        if drive is None or call is None:
            return proto.error_doc(DriveError(f"no such drive or method: {drive_name}.{method}"))
        try:
            return {"result": proto.to_wire(await call(drive, args))}
        except Exception as exc:
            return _failed(exc, f"{drive_name}.{method}")

    async def put_shard(self, request: web.Request) -> web.StreamResponse:
        drive = self._drive(request)
        try:
            writer = await drive.create_shard(request.match_info["data_id"])
        except StorageError as exc:
            return _error(exc, 503)
        taken = _taken(request)
        try:
            if taken is not None:
                received = await _take_shard(request, writer, taken)
            else:
                received = await _receive_shard(request, writer)
            if request.content_length is not None and received != request.content_length:
                raise DriveError(f"shard body ended after {received} bytes")
            await writer.finish()
        except BaseException as exc:
            # Shielded: the handler is cancelled when the gateway's connection drops, maybe
            # while the abort waits for a drive thread; the staged file must go regardless.
            await asyncio.shield(writer.abort())
            if isinstance(exc, StorageError):
                resp = _error(exc, 503)
            elif isinstance(exc, TimeoutError):
                resp = _error(DriveError("shard stream idle too long"), 408)
            else:
                raise
        else:
            resp = web.json_response({"result": None})
        if taken is not None:
            resp.force_close()  # the parser is out of step with the socket
        return resp

    async def delete_shard(self, request: web.Request) -> web.StreamResponse:
        drive = self._drive(request)
        await drive.discard_staged(request.match_info["data_id"])
        return web.json_response({"result": None})

    async def get_shard(self, request: web.Request) -> web.StreamResponse:
        """Stream a shard range: the gateway reads a whole part's range of a shard in one
        request, block by block, as the client takes it (TCP pushes back on us)."""
        drive = self._drive(request)
        try:
            offset = int(request.query["offset"])
            length = int(request.query["length"])
            reader = await drive.open_shard(request.match_info["data_id"], offset, length)
        except (KeyError, ValueError):
            return _error(DriveError("bad range"), 400)
        except DriveNotFound as exc:
            return _error(exc, 404)
        except StorageError as exc:
            return _error(exc, 503)
        try:
            resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            resp.content_length = reader.length
            await resp.prepare(request)
            try:
                if reader.fd is not None and _plain_tcp(request):
                    await sendfile_range(
                        request.transport,  # type: ignore[arg-type]  # checked by _plain_tcp
                        reader.fd,
                        reader.position,
                        reader.length,
                        self._send_pool,
                        SHARD_IDLE_TIMEOUT_S,
                    )
                else:
                    await _send_range(resp, reader)
            except (StorageError, OSError) as exc:  # TimeoutError is an OSError
                # Headers are gone: only a cut connection tells the gateway the body is bad.
                log.warning("shard stream failed: %s", exc)
                if request.transport is not None:
                    request.transport.abort()
                return resp
            await resp.write_eof()
        finally:
            await reader.close()
        return resp

    async def live(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok", "node": self.name})

    async def ready(self, request: web.Request) -> web.StreamResponse:
        drives: dict[str, dict[str, object]] = {}
        for name, drive in self.drives.items():
            try:
                info = await drive.info()
                drives[name] = {"ok": True, "free_bytes": info.free_bytes}
            except StorageError as exc:
                drives[name] = {"ok": False, "error": str(exc)}
        ok = all(d["ok"] for d in drives.values())
        return web.json_response(
            {"status": "ready" if ok else "degraded", "node": self.name, "drives": drives},
            status=200 if ok else 503,
        )

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self.authenticate],
            client_max_size=64 * 1024 * 1024,
            handler_args={"auto_decompress": False, "read_bufsize": 4 * 1024 * 1024},
        )
        app.on_shutdown.append(self._close_channels)
        app.on_cleanup.append(self._stop_send_pool)
        p = proto.PREFIX
        app.router.add_get(p + "/channel", self.channel)
        app.router.add_put(p + "/shard/{drive}/{data_id:[0-9a-f]{32}}", self.put_shard)
        app.router.add_delete(p + "/shard/{drive}/{data_id:[0-9a-f]{32}}", self.delete_shard)
        app.router.add_get(p + "/shard/{drive}/{data_id:[0-9a-f]{32}}", self.get_shard)
        app.router.add_get("/_huimin/health/live", self.live)
        app.router.add_get("/_huimin/health/ready", self.ready)
        return app
