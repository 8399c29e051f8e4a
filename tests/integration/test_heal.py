"""Healing on a real server: a wiped drive is rebuilt completely, a flipped byte is repaired by a
deep scan, and a write that missed a drive is healed from the queue when the drive returns."""

from __future__ import annotations

import filecmp
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from huimin.admin_client import call
from tests.conftest import Server, boto3_client, start_server

MIB = 1024 * 1024


def heal(server: Server, deep: bool = False) -> dict[str, Any]:
    """Start a scan and wait for it to finish; the final status."""
    before = call("GET", server.endpoint, "heal/status", server.access_key, server.secret_key)
    path = "heal/start?deep=true" if deep else "heal/start"
    call("POST", server.endpoint, path, server.access_key, server.secret_key)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = call("GET", server.endpoint, "heal/status", server.access_key, server.secret_key)
        if status["scans_completed"] > before["scans_completed"] and not status["scan_running"]:
            return dict(status)
        time.sleep(0.2)
    raise AssertionError("heal scan did not finish")


def fill(server: Server) -> dict[str, bytes]:
    s3 = boto3_client(server)
    s3.create_bucket(Bucket="heal")
    objects = {
        "empty": b"",
        "small": b"s" * 1000,
        "inline-max": bytes(range(256)) * 512,  # 128 KiB
        "big": bytes(range(251)) * (3 * MIB // 251 + 7),
    }
    for key, body in objects.items():
        s3.put_object(Bucket="heal", Key=key, Body=body)
    parts = [bytes([n]) * (5 * MIB) for n in (1, 2)] + [b"tail" * 1000]
    upload = s3.create_multipart_upload(Bucket="heal", Key="multi")["UploadId"]
    etags = [
        s3.upload_part(Bucket="heal", Key="multi", UploadId=upload, PartNumber=n, Body=p)["ETag"]
        for n, p in enumerate(parts, 1)
    ]
    s3.complete_multipart_upload(
        Bucket="heal",
        Key="multi",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    objects["multi"] = b"".join(parts)
    return objects


def inline_rows(drive: Path) -> dict[str, bytes | None]:
    with sqlite3.connect(drive / "index.sqlite3") as db:
        return dict(db.execute("SELECT key, inline FROM objects").fetchall())


def read_all(server: Server, objects: dict[str, bytes]) -> None:
    s3 = boto3_client(server)
    for key, body in objects.items():
        assert s3.get_object(Bucket="heal", Key=key)["Body"].read() == body, key


def test_a_wiped_drive_is_rebuilt_byte_identical(own_server: Server, tmp_path: Path) -> None:
    objects = fill(own_server)
    own_server.stop()
    drive = own_server.drive_dirs()[2]
    original = tmp_path / "original"
    shutil.copytree(drive, original)
    shutil.rmtree(drive)

    server = start_server(own_server.data_dir)
    try:
        status = heal(server)
        assert status["shards_rebuilt"] == len(objects)
        assert status["errors"] == 0
        # Every shard file is back under its name with the same bytes; inline shards too.
        data_files = sorted(p.relative_to(original) for p in (original / "data").rglob("*"))
        assert data_files == sorted(p.relative_to(drive) for p in (drive / "data").rglob("*"))
        for rel in data_files:
            if (original / rel).is_file():
                assert filecmp.cmp(original / rel, drive / rel, shallow=False), rel
        assert inline_rows(original) == inline_rows(drive)
        # And the rebuilt drive carries its weight: lose 4 *other* drives, read everything.
        for other in [d for d in server.drive_dirs() if d != drive][:4]:
            shutil.rmtree(other)
        read_all(server, objects)
        again = heal(server)  # nothing left to do on the healthy drives... except the lost ones
        assert again["errors"] == 0
    finally:
        server.stop()


def test_a_deep_scan_repairs_a_flipped_byte(own_server: Server) -> None:
    objects = fill(own_server)
    shard = max(own_server.drive_dirs()[5].glob("data/*/*"), key=lambda p: p.stat().st_size)
    good = shard.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    shard.write_bytes(bytes(bad))
    assert heal(own_server)["shards_rebuilt"] == 0  # a shallow scan trusts present shards
    status = heal(own_server, deep=True)
    assert status["shards_rebuilt"] == 1
    assert status["bytes_verified"] > 0
    assert shard.read_bytes() == good
    read_all(own_server, objects)


def test_a_write_that_missed_a_drive_is_healed_from_the_queue(own_server: Server) -> None:
    s3 = boto3_client(own_server)
    s3.create_bucket(Bucket="heal")
    drive = own_server.drive_dirs()[7]
    away = drive.with_name("away")
    drive.rename(away)  # the drive vanishes: the write reaches 11 of 12 drives
    body = b"q" * (2 * MIB)
    s3.put_object(Bucket="heal", Key="queued", Body=body)
    away.rename(drive)  # it comes back; the queue retries every few seconds
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = call(
            "GET", own_server.endpoint, "heal/status", own_server.access_key, own_server.secret_key
        )
        if status["shards_rebuilt"] >= 1:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"queued heal did not happen: {status}")
    assert status["queue_depth"] == 0
    assert len(list(drive.glob("data/*/*"))) == 1
    for other in [d for d in own_server.drive_dirs() if d != drive][:4]:
        shutil.rmtree(other)
    assert s3.get_object(Bucket="heal", Key="queued")["Body"].read() == body
