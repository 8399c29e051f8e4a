"""Drive loss and bitrot against a real server (EC 8+4 over DATA_DIR/drive-01..12).

Invariant 1: an acknowledged write survives the loss of any m = 4 drives of its set.
Invariant 3: every byte served was verified by its block hash; a corrupt block is read around
(parity + decode), never served.

Faults are injected behind the running server's back: drive folders removed or replaced, bytes
flipped in shard files, inline shard rows corrupted or deleted through SQLite (WAL mode allows a
second writer). Which drive holds which shard is read from the shard header (byte 9), so the
tests do not depend on placement.
"""

from __future__ import annotations

import http.client
import random
import shutil
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from erasure.constants import FRAME_HASH_BYTES, SHARD_HEADER_BYTES
from erasure.framing import parse_shard_header
from erasure.layout import Layout
from tests.conftest import Server, boto3_client, start_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

K, M = 8, 4
MIB = 1024 * 1024
# isal 8+4 with 1 MiB blocks, pinned (not the default block size): the tests below corrupt and
# read blocks of BIG by offset, so it must span several blocks.
LAYOUT = Layout("isal", K, M, block_size=MIB)
ENV = {"HUIMIN_BLOCK_SIZE_BYTES": str(MIB)}
BIG = 3 * MIB + 12_345  # four blocks, the last one short
SMALL = 10_000  # inline: shards live in the index rows


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def client(server: Server) -> S3Client:
    return boto3_client(server, connect_timeout=5, read_timeout=20)


def get(server: Server, bucket: str, key: str, byte_range: str | None = None) -> bytes:
    """The object's bytes, or the ``byte_range`` (e.g. ``"bytes=0-9"``) of them."""
    s3 = client(server)
    if byte_range is None:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return s3.get_object(Bucket=bucket, Key=key, Range=byte_range)["Body"].read()


def data_files(server: Server) -> set[Path]:
    return {p for d in server.drive_dirs() for p in (d / "data").rglob("*") if p.is_file()}


def put_with_shards(server: Server, bucket: str, key: str, body: bytes) -> dict[int, Path]:
    """PUT an object stored as shard files; returns shard index -> its shard file."""
    before = data_files(server)
    client(server).put_object(Bucket=bucket, Key=key, Body=body)
    shards: dict[int, Path] = {}
    for path in data_files(server) - before:
        with path.open("rb") as f:
            layout, index = parse_shard_header(f.read(SHARD_HEADER_BYTES))
        assert layout == LAYOUT
        assert index not in shards, "two shard files with the same index"
        shards[index] = path
    assert sorted(shards) == list(range(K + M)), shards
    return shards


def drive_of(path: Path) -> Path:
    """The drive folder holding a shard file (DATA_DIR/drive-NN/data/<ab>/<id>)."""
    return path.parents[2]


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        assert byte, f"{path} has no byte {offset}"
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x5A]))


def payload_offset(block: int, within: int = 1000) -> int:
    """Offset in a shard file of a byte inside block ``block``'s shard payload."""
    return LAYOUT.shard_block_offset(block) + FRAME_HASH_BYTES + within


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server with LAYOUT's block size (overrides tests.conftest.own_server)."""
    srv = start_server(tmp_path / "data", ENV)
    yield srv
    srv.stop()


def hash_offset(block: int) -> int:
    return LAYOUT.shard_block_offset(block) + 3


@contextmanager
def index_db(drive: Path) -> Iterator[sqlite3.Connection]:
    """A second connection to a drive's index while the server runs (autocommit)."""
    with closing(sqlite3.connect(drive / "index.sqlite3", timeout=10, isolation_level=None)) as db:
        yield db


def inline_rows(server: Server, bucket: str, key: str) -> dict[int, Path]:
    """Shard index -> drive folder, for an object whose shards are inline in the index rows."""
    rows: dict[int, Path] = {}
    for drive in server.drive_dirs():
        with index_db(drive) as db:
            row = db.execute(
                "SELECT inline FROM objects WHERE bucket=? AND key=?", (bucket, key)
            ).fetchone()
        assert row is not None and row[0] is not None, f"{drive.name} has no inline row"
        _, index = parse_shard_header(row[0][:SHARD_HEADER_BYTES])
        rows[index] = drive
    assert sorted(rows) == list(range(K + M))
    return rows


def corrupt_inline(drive: Path, bucket: str, key: str, offset: int) -> None:
    with index_db(drive) as db:
        (blob,) = db.execute(
            "SELECT inline FROM objects WHERE bucket=? AND key=?", (bucket, key)
        ).fetchone()
        damaged = bytearray(blob)
        damaged[offset] ^= 0x5A
        db.execute(
            "UPDATE objects SET inline=? WHERE bucket=? AND key=?", (bytes(damaged), bucket, key)
        )


def delete_row(drive: Path, bucket: str, key: str) -> None:
    with index_db(drive) as db:
        assert (
            db.execute("DELETE FROM objects WHERE bucket=? AND key=?", (bucket, key)).rowcount == 1
        )


def assert_unavailable(server: Server, bucket: str, key: str) -> None:
    """GET answers a clean 503 ServiceUnavailable, quickly, without a traceback in the log."""
    started = time.monotonic()
    with pytest.raises(ClientError) as info:
        get(server, bucket, key)
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503, error
    assert error["Error"]["Code"] == "ServiceUnavailable", error
    assert time.monotonic() - started < 10
    assert server.alive()
    assert "Traceback" not in server.log(), server.log()[-5000:]


# --- layout on disk --------------------------------------------------------------------------


def test_put_writes_one_shard_file_per_drive(own_server: Server):
    s3 = client(own_server)
    s3.create_bucket(Bucket="layout")
    body = payload(3 * MIB, seed=1)
    shards = put_with_shards(own_server, "layout", "obj", body)

    drives = own_server.drive_dirs()
    assert len(drives) == K + M
    assert sorted(drive_of(p) for p in shards.values()) == drives  # one shard per drive
    for drive in drives:
        files = [p for p in (drive / "data").rglob("*") if p.is_file()]
        assert len(files) == 1, files
        assert files[0].stat().st_size == LAYOUT.shard_file_size(len(body))
        assert not any((drive / "tmp").iterdir()), "staged shards left behind"
    assert len({p.name for p in shards.values()}) == 1  # one data id on every drive

    # Sanity: a shard holds at most one block's k-th of the plaintext in one piece. A window
    # across the boundary between two data chunks (or two blocks) is in no shard file.
    contents = [p.read_bytes() for p in shards.values()]
    chunk = LAYOUT.block_size // K
    for boundary in range(chunk, len(body), chunk):
        window = body[boundary - 32 : boundary + 32]
        assert not any(window in c for c in contents), f"plaintext across byte {boundary}"
    for index in range(K, K + M):  # parity shards carry no plaintext at all
        parity = shards[index].read_bytes()
        assert not any(body[o : o + 64] in parity for o in range(0, len(body), 64 * 1024))
    assert get(own_server, "layout", "obj") == body


# --- drive loss ------------------------------------------------------------------------------

LOST_SHARDS = {
    "data-0-3": (0, 1, 2, 3),
    "data-4-7": (4, 5, 6, 7),
    "parity": (8, 9, 10, 11),
    "mixed": (0, 5, 8, 11),
}


@pytest.mark.parametrize("lost", list(LOST_SHARDS.values()), ids=list(LOST_SHARDS))
def test_four_drives_removed_while_running(own_server: Server, lost: tuple[int, ...]):
    s3 = client(own_server)
    s3.create_bucket(Bucket="loss")
    big = payload(BIG, seed=2)
    small = payload(SMALL, seed=3)
    shards = put_with_shards(own_server, "loss", "big", big)
    s3.put_object(Bucket="loss", Key="small", Body=small)

    for index in lost:
        shutil.rmtree(drive_of(shards[index]))

    for _ in range(2):  # twice: a degraded read leaves nothing behind that breaks the next
        assert get(own_server, "loss", "big") == big
        assert get(own_server, "loss", "small") == small
    assert (
        get(own_server, "loss", "big", byte_range="bytes=1048000-2097999") == big[1048000:2098000]
    )

    # A fifth drive gone: too few shards left, a clean error and no hang.
    fifth = next(i for i in range(K + M) if i not in lost)
    shutil.rmtree(drive_of(shards[fifth]))
    assert_unavailable(own_server, "loss", "big")
    assert_unavailable(own_server, "loss", "big")  # and again: no state left behind


def test_writes_with_four_drives_gone_are_durable_and_with_five_refused(own_server: Server):
    """Writes acknowledged with drives missing really are on k drives; with fewer, refused.

    An open SQLite connection keeps working on a deleted folder's unlinked index, so a drive
    whose folder vanished must notice by itself, or its "commits" count toward write quorum and
    vanish at the next restart.
    """
    s3 = client(own_server)
    s3.create_bucket(Bucket="loss")
    old = payload(BIG, seed=4)
    s3.put_object(Bucket="loss", Key="old", Body=old)
    drives = own_server.drive_dirs()
    for drive in drives[:4]:
        shutil.rmtree(drive)
    assert get(own_server, "loss", "old") == old

    written = {"old": old, "big": payload(BIG, seed=40), "small": payload(SMALL, seed=41)}
    s3.put_object(Bucket="loss", Key="big", Body=written["big"])
    s3.put_object(Bucket="loss", Key="small", Body=written["small"])
    for key, body in written.items():
        assert get(own_server, "loss", key) == body

    # A fifth drive gone: fewer than k = 8 drives can take a write. Refused, nothing visible.
    shutil.rmtree(drives[4])
    for key, size in (("refused-big", BIG), ("refused-small", SMALL), ("small", SMALL)):
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket="loss", Key=key, Body=payload(size, seed=42))
        assert info.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert "Traceback" not in own_server.log()

    for key in ("refused-big", "refused-small"):
        with pytest.raises(ClientError) as info:
            s3.head_object(Bucket="loss", Key=key)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_writes_acknowledged_with_four_drives_gone_survive_restart(own_server: Server):
    s3 = client(own_server)
    s3.create_bucket(Bucket="loss")
    for drive in own_server.drive_dirs()[8:]:
        shutil.rmtree(drive)
    written = {"big": payload(BIG, seed=43), "small": payload(SMALL, seed=44)}
    for key, body in written.items():
        s3.put_object(Bucket="loss", Key=key, Body=body)
    own_server.stop()
    restarted = start_server(own_server.data_dir, ENV)  # the four drives come back empty
    try:
        for key, body in written.items():
            assert get(restarted, "loss", key) == body
        keys = [o["Key"] for o in client(restarted).list_objects_v2(Bucket="loss")["Contents"]]
        assert keys == sorted(written)
    finally:
        restarted.stop()


def test_drives_lost_mid_get_break_the_transfer(own_server: Server):
    """Headers already sent when the shards go: the client must see a broken body, never a
    short one that looks complete (and never bytes that are wrong)."""
    s3 = client(own_server)
    s3.create_bucket(Bucket="loss")
    body = payload(40 * MIB, seed=13)
    shards = put_with_shards(own_server, "loss", "big", body)
    url = urllib.parse.urlsplit(own_server.endpoint)
    request = AWSRequest(method="GET", url=f"{own_server.endpoint}/loss/big")
    credentials = Credentials(own_server.access_key, own_server.secret_key)
    S3SigV4Auth(credentials, "s3", own_server.region).add_auth(request)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.request("GET", "/loss/big", headers=dict(request.headers.items()))
        response = conn.getresponse()
        assert response.status == 200
        received = response.read(MIB)
        for index in range(5):
            shutil.rmtree(drive_of(shards[index]))
        # read() without a size checks Content-Length (read(n) would just stop at EOF).
        with pytest.raises(http.client.IncompleteRead) as info:
            response.read()
        received += info.value.partial
        assert len(received) < len(body)
        assert body.startswith(received)
    finally:
        conn.close()
    assert own_server.alive()


@pytest.mark.parametrize("mode", ["corrupt", "delete-row"])
def test_inline_object_with_four_bad_rows(own_server: Server, mode: str):
    s3 = client(own_server)
    s3.create_bucket(Bucket="inline")
    cases = {"data-0-3": (0, 1, 2, 3), "parity": (8, 9, 10, 11), "mixed": (1, 6, 9, 10)}
    bodies = {name: payload(SMALL + i, seed=10 + i) for i, name in enumerate(cases)}
    for name, body in bodies.items():
        s3.put_object(Bucket="inline", Key=name, Body=body)
    assert not data_files(own_server), "small objects must be inline, not shard files"

    for name, lost in cases.items():
        rows = inline_rows(own_server, "inline", name)
        for index in lost:
            if mode == "corrupt":
                corrupt_inline(rows[index], "inline", name, payload_offset(0, within=100))
            else:
                delete_row(rows[index], "inline", name)
    for name, body in bodies.items():
        assert get(own_server, "inline", name) == body
        assert get(own_server, "inline", name, byte_range="bytes=5-5004") == body[5:5005]
    if mode == "corrupt":
        assert "degraded read" in own_server.log()
    listed = s3.list_objects_v2(Bucket="inline")["Contents"]
    assert [o["Key"] for o in listed] == sorted(bodies)

    if mode == "corrupt":  # a fifth corrupt shard: no k intact shards remain
        fifth = inline_rows(own_server, "inline", "parity")[0]
        corrupt_inline(fifth, "inline", "parity", payload_offset(0, within=100))
        assert_unavailable(own_server, "inline", "parity")


# --- bitrot ----------------------------------------------------------------------------------

FLIPS = {
    "data-payload": (2, payload_offset(1)),
    "data-frame-hash": (5, hash_offset(0)),
    "data-last-block": (7, payload_offset(3, within=10)),
    "data-header": (0, 9),
    "parity-payload": (9, payload_offset(2)),
    "parity-header": (11, 1),
}


def test_one_flipped_byte_is_read_around(own_server: Server):
    """One object per case on one server; each has one byte flipped in one shard file."""
    s3 = client(own_server)
    s3.create_bucket(Bucket="rot")
    bodies = {name: payload(BIG, seed=20 + n) for n, name in enumerate(FLIPS)}
    for name, (index, offset) in FLIPS.items():
        flip(put_with_shards(own_server, "rot", name, bodies[name])[index], offset)

    for name, (index, offset) in FLIPS.items():
        before = own_server.log().count("degraded read")
        assert get(own_server, "rot", name) == bodies[name], name
        assert get(own_server, "rot", name) == bodies[name], name
        noticed = own_server.log().count("degraded read") > before
        # A data block is read on every GET: found bad, rebuilt from parity, logged. Parity
        # and headers are not read while all data blocks are good.
        assert noticed == (index < K and offset >= SHARD_HEADER_BYTES), name

    # A data shard file gone, and one cut short in its third block.
    for name, damage in (("missing", 3), ("truncated", 6)):
        body = payload(BIG, seed=30 + damage)
        path = put_with_shards(own_server, "rot", name, body)[damage]
        if name == "missing":
            path.unlink()
        else:
            with path.open("r+b") as f:
                f.truncate(payload_offset(2))
        before = own_server.log().count("degraded read")
        assert get(own_server, "rot", name) == body
        assert (
            get(own_server, "rot", name, byte_range="bytes=2097152-2500000")
            == (body[2 * MIB : 2_500_001])
        )
        assert own_server.log().count("degraded read") > before
    assert "Traceback" not in own_server.log()


def test_four_corrupt_shards_and_ranges(own_server: Server):
    s3 = client(own_server)
    s3.create_bucket(Bucket="rot")
    body = payload(BIG, seed=6)
    shards = put_with_shards(own_server, "rot", "obj", body)
    # Four different data shards, each bad in a different block (and shard 0 in two).
    flip(shards[0], payload_offset(0))
    flip(shards[0], payload_offset(2))
    flip(shards[3], hash_offset(1))
    flip(shards[6], payload_offset(2, within=50_000))
    flip(shards[7], payload_offset(3, within=5))

    assert get(own_server, "rot", "obj") == body
    chunk = LAYOUT.block_size // K
    ranges = [
        (0, 0),
        (0, chunk),  # all of shard 0's first chunk and one byte more
        (3 * chunk - 7, 3 * chunk + 7),  # across the chunks of shards 2 and 3
        (MIB - 10, MIB + 10),  # across blocks 0 and 1
        (MIB + 3 * chunk, MIB + 4 * chunk - 1),  # exactly shard 3's chunk of block 1
        (2 * MIB + 6 * chunk + 50_000, 2 * MIB + 6 * chunk + 50_000),
        (2 * MIB - 1, 3 * MIB + 100),  # blocks 1..3, ends in the short last block
        (len(body) - 1, len(body) - 1),
    ]
    for start, end in ranges:
        assert (
            get(own_server, "rot", "obj", byte_range=f"bytes={start}-{end}")
            == body[start : end + 1]
        )
    assert get(own_server, "rot", "obj", byte_range="bytes=-1000") == body[-1000:]
    assert get(own_server, "rot", "obj", byte_range=f"bytes={MIB * 3}-") == body[MIB * 3 :]
    assert "degraded read" in own_server.log()

    # Parity read because data is bad, and that parity bad too: 0, 1, 8, 9 of block 1.
    mixed = payload(BIG, seed=7)
    mixed_shards = put_with_shards(own_server, "rot", "mixed", mixed)
    for index in (0, 1, 8):
        flip(mixed_shards[index], payload_offset(1, within=index * 1000))
    flip(mixed_shards[9], hash_offset(1))
    assert get(own_server, "rot", "mixed") == mixed
    assert (
        get(own_server, "rot", "mixed", byte_range="bytes=1048576-1179647")
        == (mixed[MIB : MIB + chunk])
    )

    # Five bad shards, but at most two in any one block: every block still has k good shards
    # (a bad block condemns that block of its shard, not the shard's other blocks).
    flip(shards[1], payload_offset(0))
    assert get(own_server, "rot", "obj") == body
    # Five bad shards in the same block leave fewer than k good ones for that block.
    for index in (2, 4, 5):
        flip(shards[index], payload_offset(0, within=7))
    assert_unavailable(own_server, "rot", "obj")


def test_inline_bitrot_is_read_around(own_server: Server):
    s3 = client(own_server)
    s3.create_bucket(Bucket="rot")
    body = payload(SMALL, seed=7)
    s3.put_object(Bucket="rot", Key="small", Body=body)
    rows = inline_rows(own_server, "rot", "small")
    corrupt_inline(rows[0], "rot", "small", payload_offset(0, within=3))
    assert get(own_server, "rot", "small") == body
    assert "degraded read" in own_server.log()


# --- broken drive folders --------------------------------------------------------------------


@pytest.mark.parametrize("replacement", ["empty-folder", "plain-file"])
def test_drive_folder_replaced(own_server: Server, replacement: str):
    s3 = client(own_server)
    s3.create_bucket(Bucket="swap")
    old_big, old_small = payload(BIG, seed=8), payload(SMALL, seed=9)
    s3.put_object(Bucket="swap", Key="old-big", Body=old_big)
    s3.put_object(Bucket="swap", Key="old-small", Body=old_small)

    broken = own_server.drive_dirs()[6]
    shutil.rmtree(broken)
    if replacement == "empty-folder":
        broken.mkdir()
    else:
        broken.write_bytes(b"not a drive")

    new_big, new_small = payload(BIG, seed=10), payload(SMALL, seed=11)
    s3.put_object(Bucket="swap", Key="new-big", Body=new_big)
    s3.put_object(Bucket="swap", Key="new-small", Body=new_small)
    s3.put_object(Bucket="swap", Key="old-big", Body=new_big[:MIB])  # overwrite too
    expected = {
        "new-big": new_big,
        "new-small": new_small,
        "old-big": new_big[:MIB],
        "old-small": old_small,
    }
    for key, body in expected.items():
        assert get(own_server, "swap", key) == body
    listed = s3.list_objects_v2(Bucket="swap")["Contents"]
    assert [o["Key"] for o in listed] == sorted(expected)
    assert "Traceback" not in own_server.log()


def test_restart_with_a_drive_folder_replaced_by_a_file(own_server: Server):
    s3 = client(own_server)
    s3.create_bucket(Bucket="swap")
    body = payload(BIG, seed=12)
    s3.put_object(Bucket="swap", Key="obj", Body=body)
    own_server.stop()
    broken = own_server.drive_dirs()[3]
    shutil.rmtree(broken)
    broken.write_bytes(b"not a drive")
    restarted = start_server(own_server.data_dir, ENV)  # 11 of 12 drives: quorum is there
    try:
        assert get(restarted, "swap", "obj") == body
        client(restarted).put_object(Bucket="swap", Key="new", Body=body[:MIB])
        assert get(restarted, "swap", "new") == body[:MIB]
        assert "is offline" in restarted.log()
    finally:
        restarted.stop()


# --- listing ---------------------------------------------------------------------------------


def _fill_for_listing(server: Server) -> list[str]:
    s3 = client(server)
    s3.create_bucket(Bucket="list")
    keys = sorted(
        [f"flat-{i:03d}" for i in range(25)]
        + [f"dir/{d}/file-{i}" for d in "abc" for i in range(4)]
        + ["zz-big"]
    )
    for key in keys:
        s3.put_object(Bucket="list", Key=key, Body=b"x" * (200_000 if key == "zz-big" else 10))
    return keys


def _listed(server: Server, prefix: str = "", delimiter: str = "") -> tuple[list[str], list[str]]:
    """Every key and common prefix of bucket "list", page by page (7 per page)."""
    s3 = client(server)
    keys: list[str] = []
    prefixes: list[str] = []
    token: dict[str, Any] = {}
    for _ in range(50):
        page = s3.list_objects_v2(
            Bucket="list", MaxKeys=7, Prefix=prefix, Delimiter=delimiter, **token
        )
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            return keys, prefixes
        token = {"ContinuationToken": page["NextContinuationToken"]}
    raise AssertionError("listing does not end")


def test_listing_complete_with_index_rows_missing_on_four_drives(own_server: Server):
    keys = _fill_for_listing(own_server)
    drives = own_server.drive_dirs()
    # Each key's rows deleted from four drives' indexes (a different four for different keys).
    for n, key in enumerate(keys):
        for drive in drives[n % 9 : n % 9 + 4]:
            delete_row(drive, "list", key)
    assert _listed(own_server) == (keys, [])
    assert _listed(own_server, delimiter="/") == (sorted(k for k in keys if "/" not in k), ["dir/"])
    assert _listed(own_server, prefix="dir/b/") == ([k for k in keys if k.startswith("dir/b/")], [])


def test_listing_with_four_drive_folders_deleted_and_after_restart(own_server: Server):
    keys = _fill_for_listing(own_server)
    for drive in own_server.drive_dirs()[:4]:
        shutil.rmtree(drive)
    assert _listed(own_server) == (keys, [])
    # Restarted on what is left, the four drives come back empty: no index rows, no shards.
    own_server.stop()
    restarted = start_server(own_server.data_dir, ENV)
    try:
        assert _listed(restarted) == (keys, [])
        assert _listed(restarted, delimiter="/", prefix="dir/") == (
            [],
            ["dir/a/", "dir/b/", "dir/c/"],
        )
        s3 = client(restarted)
        assert s3.head_bucket(Bucket="list")["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert get(restarted, "list", "zz-big") == b"x" * 200_000
        assert get(restarted, "list", "flat-007") == b"x" * 10
        s3.put_object(Bucket="list", Key="after-restart", Body=b"new")
        assert _listed(restarted) == (sorted([*keys, "after-restart"]), [])
        assert "Traceback" not in restarted.log()
    finally:
        restarted.stop()


def test_delimiter_listing_lists_a_prefix_iff_a_key_under_it_is_readable(own_server: Server):
    # 150 directories of 2 small keys; rows then deleted behind the server's back so that the
    # drives' skip-scanned pages differ (partial writes look the same to listing).
    s3 = client(own_server)
    s3.create_bucket(Bucket="dirs")
    keys = [f"p{d:03}/k{i}" for d in range(150) for i in range(2)]
    for key in keys:
        s3.put_object(Bucket="dirs", Key=key, Body=b"x")
    drives = own_server.drive_dirs()
    for d in range(150):
        first, second = f"p{d:03}/k0", f"p{d:03}/k1"
        if d % 10 == 0:  # both keys on 7 < k drives: the directory is gone
            for drive in drives[d % 5 : d % 5 + 5]:
                delete_row(drive, "dirs", first)
                delete_row(drive, "dirs", second)
        elif d % 10 == 1:  # its first key unreadable, the second one still lists it
            for drive in drives[d % 5 : d % 5 + 5]:
                delete_row(drive, "dirs", first)
        elif d % 7 == 2:  # its first key on 8 drives: still readable
            for drive in drives[d % 7 : d % 7 + 4]:
                delete_row(drive, "dirs", first)
    want = [f"p{d:03}/" for d in range(150) if d % 10 != 0]
    assert _listed_in(own_server, "dirs", delimiter="/") == ([], want)
    for drive in drives[8:]:  # and with four drives gone
        shutil.rmtree(drive)
    assert _listed_in(own_server, "dirs", delimiter="/") == ([], want)
    assert "Traceback" not in own_server.log()


def _listed_in(
    server: Server, bucket: str, delimiter: str = "", page_size: int = 40
) -> tuple[list[str], list[str]]:
    s3 = client(server)
    keys: list[str] = []
    prefixes: list[str] = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Delimiter=delimiter, PaginationConfig={"PageSize": page_size}
    )
    for page in pages:
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes
