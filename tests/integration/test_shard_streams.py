"""GET's shard streams on a real cluster (6 node processes, EC 8+4, 4 MiB blocks): each shard
of a part is one streaming response, read block by block (storage/part_reader.py).

What a user would notice: a bad block in the middle of a shard, a node killed or frozen while
its streams are half read, and a client going away mid-body. The bytes must still be right,
the GET must not hang, and no shard stream may be left open on a node.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from erasure.constants import FRAME_HASH_BYTES, SHARD_HEADER_BYTES
from erasure.framing import parse_shard_header
from erasure.layout import Layout
from tests.cluster_fixtures import Cluster, running_cluster
from tests.integration.boto3_support import MIB, payload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.slow

BUCKET = "streams"
LAYOUT = Layout("isal", 8, 4, block_size=4 * MIB)
SIZE = 40 * MIB + 12_345  # 11 blocks, the last one short


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("streams") / "cluster") as c:
        c.s3().create_bucket(Bucket=BUCKET)
        yield c


def shard_files(cluster: Cluster, before: set[Path]) -> dict[int, tuple[str, Path]]:
    """Shard index -> (node, file) of the shard files written since ``before``."""
    out: dict[int, tuple[str, Path]] = {}
    for node in cluster.node_names:
        for drive in cluster.drive_dirs(node):
            for path in (drive / "data").rglob("*"):
                if path.is_file() and path not in before:
                    with path.open("rb") as f:
                        _, index = parse_shard_header(f.read(SHARD_HEADER_BYTES))
                    out[index] = (node, path)
    return out


def all_files(cluster: Cluster) -> set[Path]:
    return {
        p
        for node in cluster.node_names
        for drive in cluster.drive_dirs(node)
        for p in (drive / "data").rglob("*")
        if p.is_file()
    }


def put(cluster: Cluster, key: str, body: bytes) -> dict[int, tuple[str, Path]]:
    """PUT until all 12 shards were written (a node restarted by an earlier test is back in
    the gateway's eyes after its next probe); shard index -> (node, file)."""
    deadline = time.monotonic() + 20
    while True:
        before = all_files(cluster)
        cluster.s3().put_object(Bucket=BUCKET, Key=key, Body=body)
        shards = shard_files(cluster, before)
        if sorted(shards) == list(range(12)):
            return shards
        assert time.monotonic() < deadline, f"only shards {sorted(shards)} written"
        time.sleep(0.5)


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x5A]))


def get(s3: S3Client, key: str, byte_range: str | None = None) -> bytes:
    if byte_range is None:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return s3.get_object(Bucket=BUCKET, Key=key, Range=byte_range)["Body"].read()


def open_get(
    cluster: Cluster, key: str
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """A GET whose body the test reads at its own pace (presigned URL, plain http.client)."""
    url = cluster.s3(signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300
    )
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=30)
    conn.request("GET", f"{parts.path}?{parts.query}")
    resp = conn.getresponse()
    assert resp.status == 200
    return conn, resp


def open_shard_files(cluster: Cluster, node: str) -> list[str]:
    """Shard files (under the node's drives' data/) the node process holds open."""
    pid = cluster.node_pids[node]
    out = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if "/data/" in target and any(target.startswith(str(d)) for d in cluster.drive_dirs(node)):
            out.append(target)
    return out


def test_bad_blocks_in_the_middle_of_shards_are_read_around(shared: Cluster) -> None:
    body = payload(SIZE, seed=11)
    shards = put(shared, "rot", body)
    block = LAYOUT.shard_block_offset
    flip(shards[2][1], block(5) + FRAME_HASH_BYTES + 1000)  # a payload byte of block 5
    flip(shards[5][1], block(7) + 3)  # block 7's hash
    flip(shards[5][1], block(10) + FRAME_HASH_BYTES + 7)  # a second bad block: shard dropped
    s3 = shared.s3()
    assert get(s3, "rot") == body
    for start, end in [(5 * 4 * MIB - 9, 7 * 4 * MIB + 9), (40 * MIB, SIZE - 1), (0, 0)]:
        assert get(s3, "rot", f"bytes={start}-{end}") == body[start : end + 1]
    log = shared.log("gateway-1")
    assert "shard 2 block 5: hash mismatch" in log
    assert "shard 5 block 7: hash mismatch" in log


def test_node_killed_mid_get_the_rest_comes_from_parity(shared: Cluster) -> None:
    body = payload(64 * MIB, seed=12)
    shards = put(shared, "kill", body)
    victim = shards[0][0]  # holds data shard 0: its stream is being read
    conn, resp = open_get(shared, "kill")
    try:
        got = resp.read(8 * MIB)
        shared.kill_node(victim)
        got += resp.read()
    finally:
        conn.close()
        shared.restart_node(victim)
    assert got == body


def test_frozen_node_mid_get_does_not_hang_it(shared: Cluster) -> None:
    body = payload(64 * MIB, seed=13)
    shards = put(shared, "freeze", body)
    victim = shards[1][0]
    conn, resp = open_get(shared, "freeze")
    try:
        got = resp.read(8 * MIB)
        shared.kill_node(victim, signal.SIGSTOP)
        began = time.monotonic()
        got += resp.read()
        waited = time.monotonic() - began
    finally:
        conn.close()
        shared.kill_node(victim, signal.SIGCONT)
        shared.restart_node(victim)
    assert got == body
    assert waited < 15, f"the GET waited {waited:.1f} s on a frozen node"


def test_client_gone_mid_get_closes_the_shard_streams(shared: Cluster) -> None:
    body = payload(64 * MIB, seed=14)
    shards = put(shared, "gone", body)
    nodes = sorted({node for node, _ in shards.values()})
    for _ in range(3):
        conn, resp = open_get(shared, "gone")
        resp.read(MIB)
        sock = conn.sock
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)
        conn.close()
    deadline = time.monotonic() + 10
    while any(open_shard_files(shared, n) for n in nodes):
        assert time.monotonic() < deadline, {n: open_shard_files(shared, n) for n in nodes}
        time.sleep(0.1)
    assert get(shared.s3(), "gone") == body  # and the gateway still serves
