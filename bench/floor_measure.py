"""Measuring the floor's stages on this machine, each with the cheapest implementation Python
has (C-speed calls on reused buffers), in CPU seconds per GB (``bench.floor`` composes them).

Everything runs in child processes (``forkserver``) that report their own ``getrusage`` around the
timed loop only, so the figures hold on a shared box and the bench process's malloc settings
and threads stay out of it. Hashing and coding run in one child tuned like a server process
(``huimin.tuning.tune_malloc``). Each transfer is two children on loopback TCP, a sender and a
receiver, each charged separately:

- ``sendall`` of 1 MiB buffers -> ``recv_into`` a reused 1 MiB buffer (the HTTP bodies)
- ``os.sendfile`` of a page-cached file -> ``recv_into`` (what nodes do for GET)
- ``sendall`` -> splice(2) through a 1 MiB pipe into files, ``fsync``
- ``sendall`` -> ``recv_into`` + ``write`` into files, ``fsync`` (the copying alternative)
- ``sendall`` -> ``recv_into`` an aligned buffer + ``O_DIRECT`` writes, ``fsync`` (nodes' PUT
  path, storage/direct_file.py: no page cache)

Files are 64 MiB segments, each fsync'd and deleted before the next: the cheapest way to write
durably on this VM, where page cache that grows into never-used memory costs several times more
(``fresh_memory`` measures that separately).

Writeback of dirty pages runs in kernel threads that no process is charged for; the store's
own CPU figures (``/proc/<pid>/stat``) leave it out the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import multiprocessing
import os
import resource
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from bench.floor import DISK_WRITERS, Layout
from gateway.md5 import lanes_available
from huimin.settings import Settings
from storage.tcp import set_congestion

GB = 10**9
MIB = 2**20
CHUNK = MIB
PATTERN_BYTES = 64 * MIB  # distinct data hashed and encoded, cycled up to the measured size
SEGMENT_BYTES = 64 * MIB  # durable receives: one file per segment, deleted when fsync'd
_F_SETPIPE_SZ = 1031
_SLOWEST_MB_S = 20  # a transfer slower than this is taken as hung
# Loopback transfers use the congestion control of the connections they stand for
# (storage/tcp.py): between gateway and nodes the store's (CUBIC unless set), between client
# and gateway the system's. Under BBR a sender paid about twice the CPU here.
CONGESTION = Settings.model_fields["node_tcp_congestion"].default
S3_CONGESTION = Settings.model_fields["s3_tcp_congestion"].default
Log = Callable[[str], None]


def cpu_s() -> float:
    """This process's CPU seconds (all threads, user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_gb(seconds: float, nbytes: int) -> float:
    """
    >>> per_gb(0.5, 10**9 // 4)
    2.0
    """
    return seconds * GB / nbytes


def available_cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --- hashing and coding (one child) -----------------------------------------------------------


def _views(data: memoryview, piece: int, nbytes: int) -> Iterator[memoryview]:
    """``piece``-sized views of ``data``, cycled until ``nbytes`` have been given."""
    given = 0
    while given < nbytes:
        for start in range(0, len(data) - piece + 1, piece):
            yield data[start : start + piece]
            given += piece
            if given >= nbytes:
                return


def _timed(fn: Callable[[], int]) -> float:
    """CPU-s per GB of ``fn``, which returns the bytes it went through."""
    before = cpu_s()
    nbytes = fn()
    return per_gb(cpu_s() - before, nbytes)


def _md5(data: memoryview, nbytes: int) -> int:
    md5 = hashlib.md5()
    done = 0
    for view in _views(data, CHUNK, nbytes):
        md5.update(view)
        done += len(view)
    return done


MD5_LANES = 8  # the suite's uploads in flight: at most one block each in the lanes


def _md5_lanes(data: memoryview, nbytes: int) -> int:
    """``nbytes`` through the MD5 lanes, ``MD5_LANES`` blocks of 1 MiB side by side."""
    import gateway._md5lanes as ext

    states = [bytearray(16) for _ in range(MD5_LANES)]
    done = 0
    views = [v[: len(v) - len(v) % 64] for v in _views(data, CHUNK, nbytes)]
    for i in range(0, len(views), MD5_LANES):
        group = views[i : i + MD5_LANES]
        ext.md5_lanes(states[: len(group)], group)
        done += sum(len(v) for v in group)
    return done


def _xxh3(data: memoryview, shard_bytes: int, nbytes: int) -> int:
    import xxhash

    done = 0
    for i, view in enumerate(_views(data, shard_bytes, nbytes)):
        xxhash.xxh3_128_digest(view, i)
        done += len(view)
    return done


def _blocks(data: memoryview, block: int) -> list[bytes]:
    """The pattern as whole blocks, as bytes (what pyeclib takes without a copy)."""
    return [data[i : i + block].tobytes() for i in range(0, len(data) - block + 1, block)]


def _cycle(items: list[Any], nbytes: int, item_bytes: int) -> Iterator[Any]:
    """``items`` in turn until ``nbytes`` worth of ``item_bytes`` each have been given."""
    for i in range(-(-nbytes // item_bytes)):
        yield items[i % len(items)]


def _encode(codec: Any, blocks: list[bytes], nbytes: int) -> int:
    block = len(blocks[0])
    done = 0
    for data in _cycle(blocks, nbytes, block):
        codec.encode_split(data)  # as the gateway encodes a block (isal: in place)
        done += block
    return done


def _lose_data_shards(codec: Any, blocks: list[bytes]) -> list[dict[int, bytes]]:
    """Each block's shards without shards 0..m-1 (data), so decoding needs the math."""
    return [{i: s for i, s in enumerate(codec.encode(b)) if i >= codec.m} for b in blocks]


def _decode(codec: Any, encoded: list[dict[int, bytes]], block: int, nbytes: int) -> int:
    done = 0
    for shards in _cycle(encoded, nbytes, block):
        codec.decode(shards, block)
        done += block
    return done


def compute_stages(layout: Layout, nbytes: int) -> dict[str, float]:
    """MD5, xxh3, encode and decode in this process: CPU-s per GB of each stage's input."""
    from erasure.codec import get_codec
    from huimin.tuning import tune_malloc

    tune_malloc(layout.block_size_bytes)  # as a server process does at start-up
    codec = get_codec(layout.codec, layout.k, layout.m)
    block = layout.block_size_bytes
    size = max(block, min(PATTERN_BYTES, nbytes) // block * block)
    data = memoryview(os.urandom(size))
    blocks = _blocks(data, block)
    nbytes = max(nbytes, block)
    shard_bytes = codec.shard_size(block)
    encoded = _lose_data_shards(codec, blocks)  # and a warm-up of the codec and the heap
    _decode(codec, encoded, block, block)
    lanes: dict[str, float] = {}
    if lanes_available():
        lanes["md5_lanes"] = _timed(lambda: _md5_lanes(data, nbytes))
    return {
        "md5": _timed(lambda: _md5(data, nbytes)),
        **lanes,
        "xxh3": _timed(lambda: _xxh3(data, shard_bytes, nbytes)),
        "encode": _timed(lambda: _encode(codec, blocks, nbytes)),
        "decode": _timed(lambda: _decode(codec, encoded, block, nbytes)),
        "fresh_memory": fresh_memory(nbytes),
    }


def _compute_child(conn: Connection, layout: Layout, nbytes: int) -> None:
    conn.send(compute_stages(layout, nbytes))


# --- transfers (two children each) -----------------------------------------------------------


def send(sock: socket.socket, mode: str, nbytes: int, source: Path | None) -> None:
    """``nbytes`` over ``sock``: ``sendall`` of one 1 MiB buffer, or ``sendfile`` of ``source``."""
    if mode == "sendfile":
        assert source is not None
        with source.open("rb") as f:
            sent = 0
            while sent < nbytes:
                n = os.sendfile(sock.fileno(), f.fileno(), sent, nbytes - sent)
                if n == 0:
                    raise EOFError(f"{source} is shorter than {nbytes} bytes")
                sent += n
        return
    buf = memoryview(os.urandom(CHUNK))
    for _ in range(nbytes // CHUNK):
        sock.sendall(buf)
    if nbytes % CHUNK:
        sock.sendall(buf[: nbytes % CHUNK])


def receive(sock: socket.socket, mode: str, nbytes: int, target: Path | None) -> None:
    """``nbytes`` from ``sock``: into a reused buffer, or (spliced or written) into files of
    at most ``SEGMENT_BYTES`` named after ``target``, each fsync'd, closed and deleted before
    the next (so the page cache recycles its pages: see ``fresh_memory``)."""
    if mode == "recv_into":
        _recv_discard(sock, nbytes)
        return
    assert target is not None
    done = 0
    while done < nbytes:
        count = min(SEGMENT_BYTES, nbytes - done)
        direct = os.O_DIRECT if mode == "direct" and count % 4096 == 0 else 0
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | direct, 0o600)
        try:
            if mode == "splice":
                _splice_to(sock, fd, count)
            else:
                _recv_write(sock, fd, count, aligned=bool(direct))
            os.fsync(fd)
        finally:
            os.close(fd)
        target.unlink()
        done += count


def fresh_memory(nbytes: int) -> float:
    """CPU-s per GB of touching memory this process never used (one write per 4 KiB page).

    On this VM (Firecracker, free page reporting) a page the guest gave back to the host
    faults in at ~1.3 CPU-s/GB: a file write into never-used page cache costs ~3 CPU-s/GB
    instead of ~0.5. The store pays it when its page cache grows into free memory; the floor
    does not (its files are deleted as written, so pages are recycled). Reported beside it.
    """
    before = cpu_s()
    memory = bytearray(nbytes)  # calloc: untouched zero pages
    for offset in range(0, nbytes, 4096):
        memory[offset] = 1
    used = cpu_s() - before
    del memory
    return per_gb(used, nbytes)


def disk_write_mb_s(folder: Path, nbytes: int, writers: int = DISK_WRITERS) -> float:
    """Wall-clock MB/s of durable writes into ``folder``'s file system, as the nodes write
    shard files: ``writers`` threads at once, each into a new file of nbytes/writers in 1 MiB
    ``O_DIRECT`` writes (buffered where the file system refuses it), then fsync; the files are
    deleted. Not CPU: the bound the disk puts on a PUT's MB/s, whatever the cores."""
    per_file = max(CHUNK, nbytes // writers // CHUNK * CHUNK)

    def write(n: int) -> None:
        path = folder / f"disk-{n}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            with contextlib.suppress(OSError):  # tmpfs and the like: buffered
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_DIRECT)
            view = memoryview(mmap.mmap(-1, CHUNK))  # page-aligned, as O_DIRECT wants
            view[:] = os.urandom(CHUNK)
            for _ in range(per_file // CHUNK):
                written = 0
                while written < CHUNK:
                    written += os.write(fd, view[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
            path.unlink()

    started = time.monotonic()
    with ThreadPoolExecutor(writers) as pool:  # os.write and fsync release the GIL
        list(pool.map(write, range(writers)))
    return per_file * writers / (time.monotonic() - started) / 10**6


def _recv_discard(sock: socket.socket, nbytes: int) -> None:
    view = memoryview(bytearray(CHUNK))
    got = 0
    while got < nbytes:
        n = sock.recv_into(view, min(CHUNK, nbytes - got))
        if n == 0:
            raise EOFError(f"the sender closed after {got} of {nbytes} bytes")
        got += n


def _recv_write(sock: socket.socket, fd: int, nbytes: int, aligned: bool = False) -> None:
    """Fill the 1 MiB buffer, write it (one write per MiB, as few syscalls as it gets).
    ``aligned``: a page-aligned buffer (``O_DIRECT`` wants one; ``nbytes`` is whole MiBs)."""
    view = memoryview(mmap.mmap(-1, CHUNK) if aligned else bytearray(CHUNK))
    got = 0
    while got < nbytes:
        want = min(CHUNK, nbytes - got)
        filled = 0
        while filled < want:
            n = sock.recv_into(view[filled:want])
            if n == 0:
                raise EOFError(f"the sender closed after {got + filled} of {nbytes} bytes")
            filled += n
        written = 0
        while written < want:
            written += os.write(fd, view[written:want])
        got += want


def _splice_to(sock: socket.socket, fd: int, nbytes: int) -> None:
    """Socket -> pipe -> file inside the kernel (storage/splice.py without its idle wake-ups:
    a blocking socket here)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_end, _F_SETPIPE_SZ, CHUNK)
        moved = 0
        while moved < nbytes:
            n = os.splice(
                sock.fileno(), write_end, min(CHUNK, nbytes - moved), flags=os.SPLICE_F_MOVE
            )
            if n == 0:
                raise EOFError(f"the sender closed after {moved} of {nbytes} bytes")
            left = n
            while left:
                left -= os.splice(read_end, fd, left, flags=os.SPLICE_F_MOVE)
            moved += n
    finally:
        os.close(read_end)
        os.close(write_end)


def _receiver_child(
    conn: Connection, mode: str, nbytes: int, target: Path | None, congestion: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        set_congestion(server, congestion)  # the accepted connection inherits it
        conn.send(server.getsockname()[1])
        sock, _ = server.accept()
    with sock:
        before = cpu_s()
        receive(sock, mode, nbytes, target)
        conn.send(per_gb(cpu_s() - before, nbytes))


def _sender_child(
    conn: Connection, port: int, mode: str, nbytes: int, source: Path | None, congestion: str
) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        set_congestion(sock, congestion)
        before = cpu_s()
        send(sock, mode, nbytes, source)
        used = cpu_s() - before
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)  # the receiver closes when it has everything
    conn.send(per_gb(used, nbytes))


def _context() -> multiprocessing.context.ForkServerContext:
    """Children forked from a clean, single-threaded server process that has this module
    loaded already: a child starts in milliseconds, and nothing of the bench process (its
    threads, its heap) is inherited."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


@dataclass(frozen=True, slots=True)
class _Child:
    """A child process and the parent's end of its pipe."""

    conn: Connection
    process: BaseProcess

    def result(self, timeout_s: float, what: str) -> Any:
        """The child's next message; an error at once if it dies first (its traceback is on
        stderr), TimeoutError after ``timeout_s``."""
        ready = wait([self.conn, self.process.sentinel], timeout_s)
        if self.conn in ready or self.conn.poll():
            return self.conn.recv()
        if ready:
            raise ChildProcessError(f"floor: {what} exited ({self.process.exitcode})")
        raise TimeoutError(f"floor: {what} did not answer within {timeout_s:.0f} s")


@contextlib.contextmanager
def child_process(target: Callable[..., None], *args: Any) -> Iterator[_Child]:
    """A child running ``target(conn, *args)``, killed if still there when the block ends."""
    context = _context()
    ours, theirs = context.Pipe()
    process: BaseProcess = context.Process(target=target, args=(theirs, *args), daemon=True)
    process.start()
    theirs.close()
    try:
        yield _Child(ours, process)
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
        ours.close()


def transfer(
    send_mode: str,
    receive_mode: str,
    nbytes: int,
    folder: Path,
    source: Path | None = None,
    congestion: str = CONGESTION,
) -> tuple[float, float]:
    """One loopback transfer of ``nbytes`` over a connection of TCP congestion control
    ``congestion``: (sender, receiver) CPU-s per GB."""
    timeout_s = 60 + nbytes / (_SLOWEST_MB_S * 10**6)
    target = folder / f"received-{receive_mode}" if receive_mode != "recv_into" else None
    try:
        with child_process(_receiver_child, receive_mode, nbytes, target, congestion) as receiver:
            port = receiver.result(60, "the receiver")
            with child_process(
                _sender_child, port, send_mode, nbytes, source, congestion
            ) as sender:
                sent = float(sender.result(timeout_s, "the sender"))
                received = float(receiver.result(timeout_s, "the receiver"))
    finally:
        if target is not None:
            target.unlink(missing_ok=True)
    return sent, received


def compute(layout: Layout, nbytes: int) -> dict[str, float]:
    """``compute_stages`` in a child process."""
    with child_process(_compute_child, layout, nbytes) as child:
        timeout_s = 60 + 4 * nbytes / (_SLOWEST_MB_S * 10**6)
        result: dict[str, float] = child.result(timeout_s, "hashing and coding")
    return result


def write_source(path: Path, nbytes: int) -> None:
    """The file ``sendfile`` sends: written and fsync'd, so it is in the page cache and clean."""
    buf = os.urandom(CHUNK)
    with path.open("wb") as f:
        for _ in range(nbytes // CHUNK):
            f.write(buf)
        f.write(buf[: nbytes % CHUNK])
        f.flush()
        os.fsync(f.fileno())


def measure_once(layout: Layout, nbytes: int, folder: Path, source: Path) -> dict[str, float]:
    """Every stage once: CPU-s per GB through it."""
    stages = compute(layout, nbytes)
    stages["tcp_send"], stages["tcp_receive"] = transfer(
        "sendall", "recv_into", nbytes, folder, congestion=S3_CONGESTION
    )
    stages["sendfile_send"], stages["sendfile_receive"] = transfer(
        "sendfile", "recv_into", nbytes, folder, source
    )
    _, stages["splice_write"] = transfer("sendall", "splice", nbytes, folder)
    _, stages["recv_write"] = transfer("sendall", "recv_write", nbytes, folder)
    stages["shard_send"], stages["direct_write"] = transfer("sendall", "direct", nbytes, folder)
    return stages


def measure_floor(
    layout: Layout, nbytes: int, repeats: int, directory: Path, log: Log
) -> tuple[dict[str, list[float]], list[float]]:
    """Each stage's CPU-s per GB, ``repeats`` times, moving ``nbytes`` per transfer through a
    scratch folder in ``directory`` (the file system the data lives on); and as many samples
    of that file system's durable write MB/s (``disk_write_mb_s``)."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < 3 * nbytes:
        raise OSError(f"floor: {directory} has {free} bytes free, needs {3 * nbytes}")
    samples: dict[str, list[float]] = {}
    disk: list[float] = []
    with tempfile.TemporaryDirectory(prefix="huimin-floor-", dir=directory) as scratch:
        folder = Path(scratch)
        source = folder / "source"
        write_source(source, nbytes)
        for n in range(repeats):
            log(f"  floor: repeat {n + 1}/{repeats}")
            for stage, value in measure_once(layout, nbytes, folder, source).items():
                samples.setdefault(stage, []).append(value)
            disk.append(disk_write_mb_s(folder, nbytes))
    return samples, disk


def store_layout(target: str, topology: Path, server_env: Mapping[str, str]) -> Layout:
    """The layout the store under test uses: the topology's ``[erasure]`` for a cluster, else
    the server's settings (their defaults, or ``--server-env`` overrides for an embedded
    server; an endpoint's own layout is unknown here, so the defaults)."""
    if target == "cluster":
        from huimin.topology import load_topology

        e = load_topology(topology).erasure
        return Layout(e.codec, e.data_shards, e.parity_shards, e.block_size_bytes)
    from huimin.settings import Settings

    fields = Settings.model_fields
    env = server_env if target == "embedded" else {}

    def setting(name: str) -> Any:
        value = env.get(f"HUIMIN_{name.upper()}", fields[name].default)
        return value if name == "codec" else int(value)

    return Layout(
        setting("codec"),
        setting("ec_data_shards"),
        setting("ec_parity_shards"),
        setting("block_size_bytes"),
    )


def store_nodes(target: str, topology: Path) -> int:
    """The nodes of the topology for a cluster (an erasure set is dealt over them round-robin);
    0 for a server that keeps its drives itself (embedded, or an endpoint's unknown)."""
    if target != "cluster":
        return 0
    from huimin.topology import load_topology

    return len(load_topology(topology).nodes)
