"""Crashes and broken uploads (DESIGN.md invariants 1 and 2).

* A server killed with SIGKILL in the middle of a PUT comes back with the key absent (new key)
  or still at its previous version, byte for byte; staged shards (tmp/) are swept at start-up
  and nothing of the aborted write is left in data/.
* An acknowledged PUT survives SIGKILL right after the response.
* A client that goes away mid-upload leaves no object and no staged shards behind.

Uploads are streamed by hand over http.client to a presigned URL, so the test decides exactly
when the body stops. Every socket has a timeout: a hang fails the test.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import signal
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, boto3_client, start_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024
TIMEOUT_S = 10
DECLARED = 128 * MIB  # what the interrupted uploads announce; only part of it is ever sent


def client(server: Server) -> S3Client:
    return boto3_client(server, connect_timeout=5, read_timeout=30)


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def files_under(server: Server, folder: str) -> set[Path]:
    return {p for d in server.drive_dirs() for p in (d / folder).rglob("*") if p.is_file()}


def staged_bytes(server: Server) -> int:
    total = 0
    for path in files_under(server, "tmp"):
        with contextlib.suppress(FileNotFoundError):  # committed or removed meanwhile
            total += path.stat().st_size
    return total


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def head_status(server: Server, bucket: str, key: str) -> int:
    try:
        client(server).head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return 200


def assert_ready(server: Server) -> None:
    with urllib.request.urlopen(f"{server.endpoint}/_huimin/health/ready", timeout=5) as r:
        assert r.status == 200


@contextmanager
def restarted(server: Server) -> Iterator[Server]:
    """A new server process on the same data folder (the old one must be dead)."""
    assert not server.alive()
    new = start_server(server.data_dir)
    try:
        yield new
    finally:
        new.stop()


@contextmanager
def streaming_put(server: Server, bucket: str, key: str) -> Iterator[socket.socket]:
    """Start a presigned PUT announcing DECLARED bytes; yields the socket to write the body to."""
    signer = boto3_client(server, signature_version="s3v4")  # boto3 presigns SigV2 by default
    url = signer.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600
    )
    assert "X-Amz-Signature=" in url
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT_S)
    try:
        conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
        conn.putheader("Content-Length", str(DECLARED))
        conn.endheaders()
        assert conn.sock is not None
        yield conn.sock
    finally:
        conn.close()


def send_slowly(sock: socket.socket, server: Server, mib: int, seed: int) -> None:
    """Send ``mib`` MiB of the body in 1 MiB pieces, then wait until shards are being staged."""
    rng = random.Random(seed)
    for _ in range(mib):
        sock.sendall(rng.randbytes(MIB))
        time.sleep(0.01)
    wait_for(lambda: staged_bytes(server) >= MIB, "shards staged in tmp/")


# --- SIGKILL mid-PUT -------------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [False, True], ids=["new-key", "overwrite"])
def test_sigkill_mid_put_leaves_previous_state(own_server: Server, overwrite: bool):
    s3 = client(own_server)
    s3.create_bucket(Bucket="crash")
    old = payload(3 * MIB + 7, seed=1)
    s3.put_object(Bucket="crash", Key="neighbour", Body=b"unrelated")
    if overwrite:
        s3.put_object(Bucket="crash", Key="obj", Body=old)
    committed = files_under(own_server, "data")

    with streaming_put(own_server, "crash", "obj") as sock:
        send_slowly(sock, own_server, mib=24, seed=2)
        assert staged_bytes(own_server) > 0
        own_server.stop(signal.SIGKILL)

    with restarted(own_server) as server:
        assert not files_under(server, "tmp"), "staged shards survived the restart"
        assert files_under(server, "data") == committed, "the aborted write leaked shard files"
        if overwrite:
            assert client(server).get_object(Bucket="crash", Key="obj")["Body"].read() == old
        else:
            assert head_status(server, "crash", "obj") == 404
        assert client(server).get_object(Bucket="crash", Key="neighbour")["Body"].read() == (
            b"unrelated"
        )
        listed = [o["Key"] for o in client(server).list_objects_v2(Bucket="crash")["Contents"]]
        assert listed == (["neighbour", "obj"] if overwrite else ["neighbour"])
        # And the key is writable again.
        client(server).put_object(Bucket="crash", Key="obj", Body=b"after")
        assert client(server).get_object(Bucket="crash", Key="obj")["Body"].read() == b"after"
        assert "Traceback" not in server.log()


# --- SIGKILL right after an acknowledged write -----------------------------------------------


def test_acknowledged_writes_survive_sigkill(own_server: Server):
    s3 = client(own_server)
    s3.create_bucket(Bucket="acked")
    bodies = {
        "empty": b"",
        "small": payload(1000, seed=3),
        "at-inline-limit": payload(128 * 1024, seed=4),
        "big": payload(3 * MIB + 1, seed=5),
        "overwritten": payload(2 * MIB, seed=6),
    }
    s3.put_object(Bucket="acked", Key="overwritten", Body=b"old version")
    s3.put_object(Bucket="acked", Key="deleted", Body=b"gone soon")
    for key, body in bodies.items():
        s3.put_object(Bucket="acked", Key=key, Body=body)
    s3.delete_object(Bucket="acked", Key="deleted")
    parts = [payload(5 * MIB, seed=7), payload(MIB, seed=8)]
    upload_id = s3.create_multipart_upload(Bucket="acked", Key="multipart")["UploadId"]
    etags = [
        s3.upload_part(
            Bucket="acked", Key="multipart", UploadId=upload_id, PartNumber=n, Body=part
        )["ETag"]
        for n, part in enumerate(parts, start=1)
    ]
    s3.complete_multipart_upload(
        Bucket="acked",
        Key="multipart",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    bodies["multipart"] = b"".join(parts)
    last = payload(MIB + 3, seed=9)
    s3.put_object(Bucket="acked", Key="last", Body=last)
    bodies["last"] = last
    own_server.stop(signal.SIGKILL)  # right after the last response

    with restarted(own_server) as server:
        s3 = client(server)
        for key, body in bodies.items():
            assert s3.get_object(Bucket="acked", Key=key)["Body"].read() == body, key
        assert head_status(server, "acked", "deleted") == 404
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket="acked")["Contents"]]
        assert listed == sorted(bodies)
        assert not files_under(server, "tmp")
        assert "Traceback" not in server.log()


# --- client goes away mid-upload -------------------------------------------------------------


def test_overwrites_leave_only_the_newest_shard_files(own_server: Server):
    """The prune after a PUT runs after its answer; it still removes every superseded
    version's shard files, and the key reads as its last write all along."""
    s3 = client(own_server)
    s3.create_bucket(Bucket="over")
    s3.put_object(Bucket="over", Key="k", Body=payload(3 * MIB, seed=10))
    first = files_under(own_server, "data")
    for seed in (11, 12, 13):
        body = payload(3 * MIB, seed=seed)
        s3.put_object(Bucket="over", Key="k", Body=body)
        assert s3.get_object(Bucket="over", Key="k")["Body"].read() == body
    deadline = time.monotonic() + TIMEOUT_S
    while len(files := files_under(own_server, "data")) != len(first):
        assert time.monotonic() < deadline, f"{len(files)} shard files, not {len(first)}"
        time.sleep(0.05)
    assert not files & first


def test_client_disconnect_mid_upload_leaves_nothing(own_server: Server):
    s3 = client(own_server)
    s3.create_bucket(Bucket="gone")
    old = payload(2 * MIB, seed=10)
    s3.put_object(Bucket="gone", Key="existing", Body=old)
    committed = files_under(own_server, "data")

    for key in ("new", "existing"):
        with streaming_put(own_server, "gone", key) as sock:
            send_slowly(sock, own_server, mib=8, seed=11)
        # The socket is closed: the server must notice, drop the staged shards, commit nothing.
        wait_for(lambda: not files_under(own_server, "tmp"), "staged shards to be removed")

    assert head_status(own_server, "gone", "new") == 404
    assert s3.get_object(Bucket="gone", Key="existing")["Body"].read() == old
    assert files_under(own_server, "data") == committed
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="gone")["Contents"]] == ["existing"]
    assert_ready(own_server)
    # Still fully usable afterwards.
    s3.put_object(Bucket="gone", Key="new", Body=b"complete")
    assert s3.get_object(Bucket="gone", Key="new")["Body"].read() == b"complete"
    assert "Traceback" not in own_server.log(), own_server.log()[-5000:]
