"""Failures of a real distributed cluster: node processes and gateways started by
``huimin cluster up`` on topologies/local.toml (6 nodes x 2 drives, EC 8+4, two shards of the
set per node, so any 2 whole nodes may die).

Faults are real: SIGKILL and SIGSTOP of node processes, SIGKILL of a gateway mid-upload, a
node's drive folders wiped, and a node's network link cut (the node runs in its own network
namespace behind a veth pair). Every request has a client deadline and every wait a timeout.

Invariants checked (DESIGN.md section 6): an acknowledged write survives the loss of m shards'
worth of nodes (1); no reader sees a partial object or a mix of two versions (2); with more
failures than tolerated, clean 503s, then everything back after the restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import filecmp
import functools
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from huimin import cluster as ops
from huimin.admin_client import call
from huimin.daemons import send_signal
from huimin.topology import dump_topology, load_topology, with_addresses
from storage.remote_drive import LIVENESS_PROBES, Timeouts
from tenants.credentials import load_or_create_root
from tests.cluster_fixtures import (
    ACCESS_KEY,
    LOCAL_TOPOLOGY,
    SECRET_KEY,
    Cluster,
    running_cluster,
)
from tests.integration.boto3_support import KIB, MIB, payload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.slow

BUCKET = "failures"
# Inline (<= 128 KiB: shards in the index rows), one block, several blocks (4 MiB blocks).
SIZES = (1 * KIB, 40 * KIB, 128 * KIB, 128 * KIB + 1, 700 * KIB, MIB + 17, 3 * MIB, 9 * MIB + 5)
REQUEST_DEADLINE_S = 10.0  # no request may take longer, even with nodes dead or hung
# How long a gateway waits on a cut-off node before it marks it down and goes on without it.
PARTITION_DETECTED_S = Timeouts().rpc_s + LIVENESS_PROBES * Timeouts().probe_s


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def client(cluster: Cluster, endpoint: str | None = None) -> S3Client:
    return cluster.s3(endpoint, connect_timeout=5, read_timeout=20)


def error_of(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, S3 error code) of a failed call; (0, repr) when no S3 answer came."""
    if isinstance(exc, ClientError):
        response: Any = exc.response
        return int(response["ResponseMetadata"]["HTTPStatusCode"]), str(response["Error"]["Code"])
    return 0, repr(exc)


def get_bytes(s3: S3Client, key: str, bucket: str = BUCKET) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def absent(s3: S3Client, key: str, bucket: str = BUCKET) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_of(exc)[0] == 404:
            return True
        raise
    return False


def eventually(
    check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(every_s)


def readable(s3: S3Client, key: str, digest: str) -> Callable[[], bool]:
    """A check for ``eventually``: the key reads back with this content (errors: not yet)."""

    def check() -> bool:
        try:
            return sha(get_bytes(s3, key)) == digest
        except ClientError:
            return False

    return check


def heal_status(cluster: Cluster, endpoint: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = call(
        "GET", endpoint or cluster.endpoint, "heal/status", cluster.access_key, cluster.secret_key
    )
    return status


def run_heal_scan(cluster: Cluster, timeout_s: float = 60) -> dict[str, Any]:
    """Start a heal scan and wait for it to finish; the final status."""
    before = heal_status(cluster)
    call("POST", cluster.endpoint, "heal/start", cluster.access_key, cluster.secret_key)
    done: list[dict[str, Any]] = []

    def finished() -> bool:
        status = heal_status(cluster)
        done[:] = [status]
        return status["scans_completed"] > before["scans_completed"] and not status["scan_running"]

    eventually(finished, timeout_s, "heal scan finished", every_s=0.2)
    return done[0]


def healthy_drives(endpoint: str) -> int:
    """Drives the gateway reaches (its readiness report; a node it marked down counts out)."""
    url = endpoint + "/_huimin/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            doc = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        doc = json.loads(exc.read())
    return sum(int(s["healthy"]) for s in doc["sets"])


def all_drives_back(cluster: Cluster, timeout_s: float = 15) -> None:
    """Wait until every running gateway reaches all 12 drives again (nodes marked down are
    probed every second)."""
    for endpoint in [g.endpoint for g in cluster.state().gateways if g.alive()]:
        eventually(
            functools.partial(_reaches_all, endpoint), timeout_s, f"{endpoint} reaches 12 drives"
        )


def _reaches_all(endpoint: str) -> bool:
    return healthy_drives(endpoint) == 12


def assert_clean_logs(cluster: Cluster) -> None:
    """No running gateway logged a traceback (an unexpected error) or answered a 500."""
    for gateway in cluster.state().gateways:
        if gateway.alive():
            log = cluster.log(gateway.name)
            assert "Traceback" not in log and "InternalError" not in log, log[-5000:]


def kill_gateway(cluster: Cluster, index: int) -> None:
    gateway = cluster.state().gateways[index]
    assert send_signal(gateway, signal.SIGKILL), f"{gateway.name} is not running"
    eventually(lambda: not gateway.alive(), 15, f"{gateway.name} gone", every_s=0.02)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- what the drives hold --------------------------------------------------------------------


def data_files(drive: Path) -> set[str]:
    """Committed shard files of a drive folder (data/<ab>/<data id>), by relative path."""
    return {str(p.relative_to(drive)) for p in (drive / "data").rglob("*") if p.is_file()}


def tmp_files(drive: Path) -> list[Path]:
    tmp = drive / "tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


def index_rows(drive: Path, bucket: str = BUCKET) -> dict[str, tuple[str, bytes | None]]:
    """key -> (version id, inline shard or None) of every object row of the drive's index."""
    with contextlib.closing(sqlite3.connect(drive / "index.sqlite3", timeout=10)) as db:
        rows = db.execute(
            "SELECT key, version_id, inline FROM objects WHERE bucket=?", (bucket,)
        ).fetchall()
    return {key: (version, inline) for key, version, inline in rows}


def drives_of(cluster: Cluster, nodes: list[str]) -> list[Path]:
    return [d for n in nodes for d in cluster.drive_dirs(n)]


# --- a mixed PUT/GET load --------------------------------------------------------------------


@dataclass
class Load:
    """Acknowledged writes and the outcome of every request, shared by the load threads.

    Keys are never overwritten, so a GET of an acknowledged key has exactly one right answer.
    """

    acked: dict[str, str] = field(default_factory=dict)  # key -> sha256 of the acked bytes
    refused: dict[str, str] = field(default_factory=dict)  # key -> sha256 of a failed PUT
    put_errors: list[tuple[int, str]] = field(default_factory=list)
    get_errors: list[tuple[str, int, str]] = field(default_factory=list)
    wrong_bodies: list[str] = field(default_factory=list)  # GET 200 with other bytes: never
    latencies: list[tuple[str, float, float]] = field(default_factory=list)  # op, at, seconds
    gets_ok: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)

    def put(self, s3: S3Client, key: str, body: bytes) -> None:
        began = time.monotonic()
        try:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        except Exception as exc:
            with self.lock:
                self.put_errors.append(error_of(exc))
                self.refused[key] = sha(body)
        else:
            with self.lock:
                self.acked[key] = sha(body)
        finally:
            self._timed("PUT", began)

    def get(self, s3: S3Client, key: str) -> None:
        began = time.monotonic()
        try:
            body = get_bytes(s3, key)
        except Exception as exc:
            with self.lock:
                self.get_errors.append((key, *error_of(exc)))
        else:
            with self.lock:
                if sha(body) == self.acked[key]:
                    self.gets_ok += 1
                else:
                    self.wrong_bodies.append(key)
        finally:
            self._timed("GET", began)

    def _timed(self, op: str, began: float) -> None:
        with self.lock:
            self.latencies.append((op, began - self.started, time.monotonic() - began))

    def pick(self, rng: random.Random) -> str | None:
        with self.lock:
            keys = list(self.acked)
        return rng.choice(keys) if keys else None

    def worker(self, s3: S3Client, name: str, seed: int, max_ops: int) -> None:
        rng = random.Random(seed)
        for n in range(max_ops):
            if self.stop.is_set():
                return
            key = self.pick(rng) if n % 2 else None
            if key is None:
                size = rng.choice(SIZES)
                self.put(s3, f"{name}/{n:04d}", payload(size, seed=seed * 10_000 + n))
            else:
                self.get(s3, key)

    @contextlib.contextmanager
    def running(self, clients: list[S3Client], max_ops: int = 400) -> Iterator[None]:
        """Run one worker per client for the block; stop and join them after it."""
        self.started = time.monotonic()
        threads = [
            threading.Thread(
                target=self.worker, args=(s3, f"load-{i}", 1000 + i, max_ops), daemon=True
            )
            for i, s3 in enumerate(clients)
        ]
        for t in threads:
            t.start()
        try:
            yield
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=60)
            assert not any(t.is_alive() for t in threads), "a load thread hangs"

    def max_latency(self, op: str | None = None) -> float:
        return max((s for o, _, s in self.latencies if op in (None, o)), default=0.0)


def populate(s3: S3Client, load: Load, count: int, prefix: str = "pre", seed: int = 7) -> None:
    for n in range(count):
        body = payload(SIZES[n % len(SIZES)], seed=seed * 1000 + n)
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{n:03d}", Body=body)
        load.acked[f"{prefix}/{n:03d}"] = sha(body)


def verify_all(s3: S3Client, acked: dict[str, str]) -> None:
    wrong = [key for key, digest in sorted(acked.items()) if sha(get_bytes(s3, key)) != digest]
    assert not wrong, f"acknowledged objects read back with other bytes: {wrong}"


# --- 1. m nodes killed during a mixed load ---------------------------------------------------


def test_two_nodes_killed_mid_load_lose_nothing(cluster: Cluster) -> None:
    s3 = client(cluster)
    s3.create_bucket(Bucket=BUCKET)
    load = Load()
    populate(s3, load, 14)

    with load.running([client(cluster) for _ in range(4)]):
        time.sleep(2.5)
        killed_at = time.monotonic() - load.started
        cluster.kill_node("node-2")
        cluster.kill_node("node-5")
        time.sleep(5)

    after_kill = [s for op, at, s in load.latencies if at >= killed_at]
    puts = sum(1 for op, *_ in load.latencies if op == "PUT")
    print(
        f"\nload: {len(load.latencies)} requests ({puts} PUT), {load.gets_ok} GETs ok, "
        f"{len(after_kill)} after the kill at {killed_at:.1f} s; max latency "
        f"{load.max_latency():.2f} s; PUTs refused: {load.put_errors}"
    )
    assert len(after_kill) >= 20, "the load hardly ran while the nodes were down"
    assert not load.wrong_bodies, load.wrong_bodies
    assert not load.get_errors, f"GETs of acknowledged objects failed: {load.get_errors}"
    assert all(status == 503 for status, _ in load.put_errors), load.put_errors
    assert load.max_latency() < REQUEST_DEADLINE_S

    # Every acknowledged PUT is there, byte for byte, with the two nodes still down...
    verify_all(s3, load.acked)
    # ... and refused PUTs are either absent or whole (never partial).
    for key, digest in load.refused.items():
        assert absent(s3, key) or sha(get_bytes(s3, key)) == digest, key
    assert_clean_logs(cluster)


# --- 2. more failures than the scheme tolerates ----------------------------------------------


def test_three_nodes_down_clean_503_then_everything_back(cluster: Cluster) -> None:
    s3 = client(cluster)
    s3.create_bucket(Bucket=BUCKET)
    load = Load()
    populate(s3, load, 14)

    # Kill three nodes while PUTs and GETs run: requests in flight may fail, but only cleanly.
    with load.running([client(cluster) for _ in range(3)]):
        time.sleep(1.5)
        for name in ("node-1", "node-3", "node-6"):
            cluster.kill_node(name)
            time.sleep(0.3)
        time.sleep(3)
    print(
        f"\n3 nodes killed mid-load: {len(load.acked)} PUTs acknowledged, "
        f"{len(load.put_errors)} refused {sorted(set(load.put_errors))}, {load.gets_ok} GETs ok, "
        f"{len(load.get_errors)} failed {sorted({e[1:] for e in load.get_errors})}; "
        f"max latency {load.max_latency():.2f} s"
    )
    assert not load.wrong_bodies, f"GET answered 200 with other bytes: {load.wrong_bodies}"
    assert all(status == 503 for status, _ in load.put_errors), load.put_errors
    # 0: the body broke off after a 200 (headers sent before the third node died); never 500.
    assert {s for _, s, _ in load.get_errors} <= {503, 0}, load.get_errors
    broken = [e for e in load.get_errors if e[1] == 0]
    assert all("IncompleteRead" in e[2] or "ResponseStreamingError" in e[2] for e in broken), broken
    assert load.max_latency() < REQUEST_DEADLINE_S

    # With 6 of 12 drives left (k = 8) every request is a quick, clean 503.
    def unavailable(request: Callable[[], object]) -> None:
        began = time.monotonic()
        with pytest.raises(ClientError) as info:
            request()
        assert error_of(info.value) == (503, "ServiceUnavailable"), info.value.response
        assert time.monotonic() - began < REQUEST_DEADLINE_S

    for key in sorted(load.acked)[:12]:
        unavailable(functools.partial(get_bytes, s3, key))
    unavailable(lambda: s3.put_object(Bucket=BUCKET, Key="refused", Body=b"x" * 1000))
    unavailable(lambda: s3.put_object(Bucket=BUCKET, Key="refused-big", Body=payload(2 * MIB)))
    unavailable(lambda: s3.list_objects_v2(Bucket=BUCKET))
    assert_clean_logs(cluster)

    for name in ("node-1", "node-3", "node-6"):
        cluster.restart_node(name)
    all_drives_back(cluster)
    first = sorted(load.acked)[0]
    eventually(readable(s3, first, load.acked[first]), 15, "reads after the restart")
    verify_all(s3, load.acked)
    # A PUT refused with 503 left no partial object: absent, or (committed before the reply
    # was lost) whole.
    for key, digest in [*load.refused.items(), ("refused", sha(b"x" * 1000))]:
        assert absent(s3, key) or sha(get_bytes(s3, key)) == digest, key
    listed = {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    }
    assert set(load.acked) <= listed


# --- 3. a hung node (SIGSTOP) ----------------------------------------------------------------


def test_hung_node_costs_one_timeout_then_writes_are_healed(cluster: Cluster) -> None:
    s3 = client(cluster)
    s3.create_bucket(Bucket=BUCKET)
    load = Load()
    populate(s3, load, 8)
    hung = "node-3"
    cluster.kill_node(hung, signal.SIGSTOP)
    latencies: list[tuple[str, int, float]] = []
    written: dict[str, str] = {}
    try:
        for n in range(18):
            began = time.monotonic()
            if n % 2 == 0:  # PUTs first: a big one, then inline and one-block ones
                size = (3 * MIB, 1 * KIB, 700 * KIB)[n // 2 % 3]
                body = payload(size, seed=500 + n)
                s3.put_object(Bucket=BUCKET, Key=f"hung/{n:02d}", Body=body)
                written[f"hung/{n:02d}"] = sha(body)
                op = "PUT"
            else:
                size = SIZES[n // 2 % len(SIZES)]
                key = f"pre/{n // 2 % 8:03d}"
                assert sha(get_bytes(s3, key)) == load.acked[key]
                op = "GET"
            latencies.append((op, size, time.monotonic() - began))
    finally:
        cluster.kill_node(hung, signal.SIGCONT)
    print("\nlatency during SIGSTOP of " + hung)
    for op, size, seconds in latencies:
        print(f"  {op} {size:>8} B  {seconds:6.3f} s")
    assert max(s for *_, s in latencies) < 8, latencies
    # The node was marked down by the first timeout: the rest are degraded reads and writes
    # that wait for it no more (each well under one 3 s node timeout, even on a busy box).
    assert all(s < 2.5 for *_, s in latencies[2:]), latencies

    # Thawed, the node gets the writes it missed from the heal queue (retried every 5 s).
    hung_drives = cluster.drive_dirs(hung)
    reference = cluster.drive_dirs("node-1")

    def caught_up() -> bool:
        return all(
            {k: v[0] for k, v in index_rows(d).items()}
            == {k: v[0] for k, v in index_rows(r).items()}
            for d, r in zip(hung_drives, reference, strict=True)
        )

    eventually(caught_up, 30, f"{hung}'s index holds every write made while it hung")
    status = heal_status(cluster)
    # Not every write needs a rebuild: a commit sent before the node was marked down (the
    # first PUT's: 3 MiB is one block, its commit carries the shard) is applied when it thaws.
    assert status["shards_rebuilt"] >= 2 * (len(written) - 1), status
    for d, r in zip(hung_drives, reference, strict=True):
        assert data_files(d) == data_files(r)
        assert not tmp_files(d), "a staged shard outlived the hang"
    # Those shards are real: with two other nodes gone the set needs every one of them.
    cluster.kill_node("node-4")
    cluster.kill_node("node-6")
    verify_all(s3, {**load.acked, **written})
    assert_clean_logs(cluster)


# --- 4. a gateway killed mid-PUT -------------------------------------------------------------


def test_gateway_killed_mid_put_leaves_nothing_visible(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster", gateways=2) as cluster:
        gw1, gw2 = cluster.endpoints
        s3_1, s3_2 = client(cluster, gw1), client(cluster, gw2)
        s3_1.create_bucket(Bucket=BUCKET)
        previous = payload(2 * MIB + 3, seed=41)
        s3_1.put_object(Bucket=BUCKET, Key="overwritten", Body=previous)
        drives = drives_of(cluster, cluster.node_names)
        before = {d: data_files(d) for d in drives}

        size = 24 * MIB
        uploads = [SlowUpload(cluster, gw1, key, size) for key in ("fresh", "overwritten")]
        for upload in uploads:
            upload.send(7 * MIB)  # several blocks encoded and streamed to the nodes
        time.sleep(0.5)
        staged_before_kill = sum(len(tmp_files(d)) for d in drives)
        kill_gateway(cluster, 0)
        for upload in uploads:
            assert upload.broken_after(MIB), "the upload went on after its gateway died"
        time.sleep(1)
        staged_after_kill = sum(len(tmp_files(d)) for d in drives)
        print(
            f"\nstaged shards in the nodes' tmp/: {staged_before_kill} mid-upload, "
            f"{staged_after_kill} one second after the gateway died"
        )
        assert staged_before_kill > 0, "the upload never reached the nodes"
        # Observed: a node discards a staged shard as soon as the gateway's stream breaks (it
        # does not wait for its next start-up sweep).
        eventually(
            lambda: not any(tmp_files(d) for d in drives), 10, "nodes discard the staged shards"
        )

        # Nothing of the interrupted PUTs is visible from the other gateway.
        assert absent(s3_2, "fresh")
        assert get_bytes(s3_2, "overwritten") == previous
        listed = s3_2.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        assert [(o["Key"], o["Size"]) for o in listed] == [("overwritten", len(previous))]

        # Nodes sweep tmp/ at start-up; a restart leaves no staged or orphaned shard files.
        for name in cluster.node_names:
            cluster.restart_node(name)
        all_drives_back(cluster)
        assert all(not tmp_files(d) for d in drives), {d: tmp_files(d) for d in drives}
        assert {d: data_files(d) for d in drives} == before, "shard files leaked into data/"
        eventually(readable(s3_2, "overwritten", sha(previous)), 15, "reads after the restart")
        assert absent(s3_2, "fresh")
        assert_clean_logs(cluster)


class SlowUpload:
    """A presigned PUT streamed by hand, so the test decides when the body stops."""

    def __init__(self, cluster: Cluster, endpoint: str, key: str, size: int) -> None:
        presigner = cluster.s3(endpoint, signature_version="s3v4")
        url = presigner.generate_presigned_url(
            "put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=600
        )
        parts = urllib.parse.urlsplit(url)
        host = urllib.parse.urlsplit(endpoint)
        self.conn = http.client.HTTPConnection(host.hostname or "", host.port, timeout=10)
        self.conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
        self.conn.putheader("Content-Length", str(size))
        self.conn.endheaders()
        self.body = payload(size, seed=len(key))
        self.sent = 0

    def send(self, n: int) -> None:
        for start in range(self.sent, self.sent + n, 256 * KIB):
            self.conn.send(self.body[start : start + 256 * KIB])
            time.sleep(0.01)
        self.sent += n

    def broken_after(self, n: int) -> bool:
        """Send up to ``n`` more bytes: True when the connection broke (the gateway is gone)."""
        try:
            self.send(n)
            response = self.conn.getresponse()  # the gateway cannot answer a short body
        except OSError:
            return True
        finally:
            self.conn.close()
        return response.status >= 500


# --- 5. two gateways over one cluster --------------------------------------------------------


def test_two_gateways_read_after_write_and_last_writer_wins(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster", gateways=2) as cluster:
        gw1, gw2 = cluster.endpoints
        s3_1, s3_2 = client(cluster, gw1), client(cluster, gw2)
        s3_1.create_bucket(Bucket=BUCKET)
        assert BUCKET in [b["Name"] for b in s3_2.list_buckets()["Buckets"]]

        # Read-after-write across gateways: PUT on one, GET/LIST/DELETE on the other at once.
        for n in range(12):
            key = f"raw/{n:02d}"
            body = payload(SIZES[n % len(SIZES)], seed=n)
            (writer, reader) = (s3_1, s3_2) if n % 2 == 0 else (s3_2, s3_1)
            writer.put_object(Bucket=BUCKET, Key=key, Body=body)
            assert get_bytes(reader, key) == body
            listed = reader.list_objects_v2(Bucket=BUCKET, Prefix="raw/")["Contents"]
            assert [o["Key"] for o in listed][-1] == key
            newer = payload(1000 + n, seed=100 + n)
            reader.put_object(Bucket=BUCKET, Key=key, Body=newer)
            assert get_bytes(writer, key) == newer
        s3_2.delete_object(Bucket=BUCKET, Key="raw/00")
        assert absent(s3_1, "raw/00")

        # Concurrent overwrites of one key from both gateways: one whole write wins, both
        # gateways agree on which, never a mix of the two (multi-block bodies would show it).
        barrier = threading.Barrier(2, timeout=30)
        outcomes: list[tuple[int, str]] = []

        def overwrite(s3: S3Client, body: bytes) -> None:
            barrier.wait()
            s3.put_object(Bucket=BUCKET, Key="contended", Body=body)
            outcomes.append((len(body), sha(body)))

        for round_ in range(4):
            bodies = [payload(2 * MIB + round_, seed=200 + 2 * round_ + i) for i in (0, 1)]
            if round_ % 2:
                bodies = [b[: 60 * KIB + round_] for b in bodies]  # inline objects too
            threads = [
                threading.Thread(target=overwrite, args=(s3, body), daemon=True)
                for s3, body in zip((s3_1, s3_2), bodies, strict=True)
            ]
            outcomes.clear()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert len(outcomes) == 2, "a concurrent PUT failed or hung"
            seen = {sha(get_bytes(s3, "contended")) for s3 in (s3_1, s3_2, s3_1, s3_2)}
            assert len(seen) == 1, "the gateways disagree on the winner"
            assert seen <= {sha(b) for b in bodies}, "a mix of two writes"
            heads = {s3.head_object(Bucket=BUCKET, Key="contended")["ETag"] for s3 in (s3_1, s3_2)}
            assert len(heads) == 1
        assert_clean_logs(cluster)


# --- 6. listing with m nodes down ------------------------------------------------------------


def test_listing_complete_with_two_nodes_down(cluster: Cluster) -> None:
    s3 = client(cluster)
    s3.create_bucket(Bucket=BUCKET)
    keys = (
        [f"top-{n:03d}" for n in range(40)]
        + [f"a/{n:03d}" for n in range(100)]
        + [f"a/b/{n:03d}" for n in range(60)]
        + [f"a/c/{n:02d}/x" for n in range(30)]
        + [f"photos/2024/{n:03d}.jpg" for n in range(50)]
        + [f"z{n:02d}/" for n in range(20)]
    )
    sizes = {key: (n * 37) % 3000 for n, key in enumerate(keys)}
    clients = [client(cluster) for _ in range(6)]
    errors: list[BaseException] = []

    def put_some(i: int) -> None:
        try:
            for key in keys[i :: len(clients)]:
                clients[i].put_object(Bucket=BUCKET, Key=key, Body=payload(sizes[key], seed=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put_some, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads), errors
    expected = sorted(keys)

    def listing(**args: Any) -> tuple[list[tuple[str, int]], list[str]]:
        objects: list[tuple[str, int]] = []
        prefixes: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, **args):
            objects += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return objects, prefixes

    def expected_listing(prefix: str, delimiter: str) -> tuple[list[tuple[str, int]], list[str]]:
        objects: list[tuple[str, int]] = []
        prefixes: list[str] = []
        for key in expected:
            if not key.startswith(prefix):
                continue
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                if key[: cut + 1] not in prefixes:
                    prefixes.append(key[: cut + 1])
            else:
                objects.append((key, sizes[key]))
        return objects, prefixes

    cases = [
        ("", "", 1000),
        ("", "", 37),
        ("", "/", 7),
        ("a/", "/", 11),
        ("a/", "", 50),
        ("a/c/", "/", 4),
        ("photos/", "/", 1),
        ("photos/2024/", "/", 9),
        ("z", "/", 3),
        ("nothing/", "/", 10),
    ]
    full = [(k, sizes[k]) for k in expected]
    assert listing(PaginationConfig={"PageSize": 1000}) == (full, [])
    cluster.kill_node("node-2")
    cluster.kill_node("node-5")
    for prefix, delimiter, page_size in cases:
        got = listing(Prefix=prefix, Delimiter=delimiter, PaginationConfig={"PageSize": page_size})
        assert got == expected_listing(prefix, delimiter), (prefix, delimiter, page_size)
    # ListObjects (v1) with markers, and StartAfter.
    v1: list[str] = []
    for page in s3.get_paginator("list_objects").paginate(
        Bucket=BUCKET, PaginationConfig={"PageSize": 45}
    ):
        v1 += [o["Key"] for o in page.get("Contents", [])]
    assert v1 == expected
    after = s3.list_objects_v2(Bucket=BUCKET, StartAfter="a/b/059", MaxKeys=5)["Contents"]
    assert [o["Key"] for o in after] == [k for k in expected if k > "a/b/059"][:5]
    assert_clean_logs(cluster)


# --- 7. a wiped node is healed ---------------------------------------------------------------


def test_wiped_node_rebuilt_and_carries_its_weight(cluster: Cluster, tmp_path: Path) -> None:
    s3 = client(cluster)
    s3.create_bucket(Bucket=BUCKET)
    objects: dict[str, str] = {}
    for n, size in enumerate([*SIZES, 0, 8 * MIB, 8 * MIB + 1, 16 * MIB, 5 * MIB, *SIZES]):
        body = payload(size, seed=300 + n)
        s3.put_object(Bucket=BUCKET, Key=f"obj/{n:02d}", Body=body)
        objects[f"obj/{n:02d}"] = sha(body)
    parts = [payload(5 * MIB, seed=71), payload(3 * MIB + 5, seed=72)]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="multi")["UploadId"]
    etags = [
        s3.upload_part(Bucket=BUCKET, Key="multi", UploadId=upload, PartNumber=n, Body=p)["ETag"]
        for n, p in enumerate(parts, 1)
    ]
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="multi",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    objects["multi"] = sha(b"".join(parts))

    wiped = "node-4"
    cluster.kill_node(wiped)
    originals = {}
    for drive in cluster.drive_dirs(wiped):
        originals[drive] = tmp_path / "original" / drive.name
        shutil.copytree(drive, originals[drive])
        shutil.rmtree(drive)
    cluster.restart_node(wiped)
    all_drives_back(cluster)  # else the scan would skip the node as unreachable

    pids = [g.pid for g in cluster.state().gateways] + list(cluster.node_pids.values())
    cpu_before = sum(cpu_seconds(p) for p in pids)
    gateway_before = cpu_seconds(pids[0])
    status = run_heal_scan(cluster)
    cpu = sum(cpu_seconds(p) for p in pids) - cpu_before
    gateway_cpu = cpu_seconds(pids[0]) - gateway_before
    gb = status["bytes_rebuilt"] / 1e9
    print(
        f"\nheal of {wiped}: {status['shards_rebuilt']} shards, {status['bytes_rebuilt']} bytes "
        f"in {status['rebuild_seconds']:.2f} s = {status['rebuild_mb_per_s']} MB/s; CPU "
        f"{cpu / gb:.1f} s/GB rebuilt (all processes), {gateway_cpu / gb:.1f} s/GB (gateway)"
    )
    assert status["errors"] == 0, status
    assert status["objects_healed"] == len(objects), status
    assert status["shards_rebuilt"] == 2 * len(objects), status

    # Every shard is back: same files and rows as the drives of the other nodes, and the same
    # bytes as before the wipe.
    for drive, original in originals.items():
        twin = cluster.drive_dirs("node-1")[cluster.drive_dirs(wiped).index(drive)]
        assert data_files(drive) == data_files(twin) == data_files(original)
        for rel in data_files(original):
            assert filecmp.cmp(original / rel, drive / rel, shallow=False), rel
        rows, before = index_rows(drive), index_rows(original)
        assert rows == before, "index rows (version, inline shard) differ from before the wipe"
        assert len(rows) == len(objects)

    # ... and they carry their weight: with two other nodes gone, the set needs all of them.
    cluster.kill_node("node-1")
    cluster.kill_node("node-2")
    verify_all(s3, objects)
    assert_clean_logs(cluster)


# --- a node that missed the bucket's creation ----------------------------------------------


def test_node_down_at_bucket_creation_gets_bucket_and_objects(cluster: Cluster) -> None:
    """The bucket record is on 10 of 12 drives. The node gets it when the gateway sees the
    node come back (bucket sync on recovery) or, if writes race ahead of that, when healing
    gives it the record and then the shards: either way the node ends up with everything."""
    s3 = client(cluster)
    late = "node-6"
    cluster.kill_node(late)
    s3.create_bucket(Bucket=BUCKET)
    cluster.restart_node(late)
    all_drives_back(cluster)
    objects: dict[str, str] = {}
    for n, size in enumerate(SIZES):
        body = payload(size, seed=900 + n)
        s3.put_object(Bucket=BUCKET, Key=f"late/{n}", Body=body)
        objects[f"late/{n}"] = sha(body)

    def caught_up() -> bool:
        return all(index_rows(d).keys() == objects.keys() for d in cluster.drive_dirs(late))

    eventually(caught_up, 20, f"{late} holds the bucket's objects (sync or heal queue)")
    for d, r in zip(cluster.drive_dirs(late), cluster.drive_dirs("node-3"), strict=True):
        assert data_files(d) == data_files(r)
    cluster.kill_node("node-1")
    cluster.kill_node("node-2")
    s3.head_bucket(Bucket=BUCKET)
    verify_all(s3, objects)
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(objects)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="none/")["KeyCount"] == 0
    assert_clean_logs(cluster)


# --- 8. a network partition ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Netns:
    """A network namespace joined to ours by a veth pair on a link-local /24."""

    name: str
    outer: str  # veth end in our namespace
    inner: str  # veth end in the node's namespace
    outer_ip: str
    inner_ip: str

    def ip(self, *args: str, inside: bool = False) -> None:
        argv = ["ip", *(["-n", self.name] if inside else []), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")

    def cut(self) -> None:
        """Pull the node's cable: packets are dropped (no resets), so calls time out."""
        self.ip("link", "set", self.inner, "down", inside=True)

    def restore(self) -> None:
        self.ip("link", "set", self.inner, "up", inside=True)


@pytest.fixture
def netns() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns add)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (`ip`) is not installed")
    tag = os.getpid() % 100_000
    subnet = f"169.254.{20 + tag % 140}"  # link-local, on this veth link only
    ns = Netns(f"hm-ns{tag}", f"hm-o{tag}", f"hm-i{tag}", f"{subnet}.1", f"{subnet}.2")
    try:
        ns.ip("netns", "add", ns.name)
    except RuntimeError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc}")
    try:
        try:
            ns.ip("link", "add", ns.outer, "type", "veth", "peer", "name", ns.inner)
        except RuntimeError as exc:
            pytest.skip(f"cannot create a veth pair here: {exc}")
        ns.ip("link", "set", ns.inner, "netns", ns.name)
        ns.ip("addr", "add", f"{ns.outer_ip}/24", "dev", ns.outer)
        ns.ip("link", "set", ns.outer, "up")
        ns.ip("addr", "add", f"{ns.inner_ip}/24", "dev", ns.inner, inside=True)
        ns.ip("link", "set", ns.inner, "up", inside=True)
        ns.ip("link", "set", "lo", "up", inside=True)
        yield ns
    finally:
        with contextlib.suppress(RuntimeError):
            ns.ip("link", "del", ns.outer)  # takes its peer along
        ns.ip("netns", "del", ns.name)


@contextlib.contextmanager
def cluster_with_node_in(netns: Netns, data_dir: Path, node: str) -> Iterator[Cluster]:
    """The local topology with ``node`` running inside ``netns`` on its veth address and the
    rest on 127.0.0.1: ``huimin cluster up`` done by hand with huimin.cluster's helpers,
    because ``up`` only listens on addresses of this namespace. (``restart_node`` would start
    ``node`` outside the namespace: the test cuts its link instead of killing it.)"""
    data_dir = data_dir.resolve()
    topology = load_topology(LOCAL_TOPOLOGY)
    identity = ops.load_identity(data_dir, topology)
    load_or_create_root(data_dir, ACCESS_KEY, SECRET_KEY)
    taken: set[int] = set()
    addresses = {
        n.name: ops.pick_address("127.0.0.1:0", None, taken)
        for n in topology.nodes
        if n.name != node
    }
    addresses[node] = f"{netns.inner_ip}:9470"
    resolved_path = data_dir / ops.RESOLVED_TOPOLOGY
    resolved_path.write_text(
        dump_topology(with_addresses(topology, addresses), f"{node} in netns {netns.name}")
    )
    state = ops.ClusterState(
        data_dir=str(data_dir),
        topology=str(resolved_path),
        deployment_id=identity.deployment_id,
        program=ops.default_program(),
        root_access_key=ACCESS_KEY,
        root_secret_key=SECRET_KEY,
        nodes=[],
        gateways=[],
    )
    ip = shutil.which("ip")
    assert ip is not None
    inside = dataclasses.replace(state, program=[ip, "netns", "exec", netns.name, *state.program])
    try:
        for name, address in addresses.items():
            starter = inside if name == node else state
            state.nodes.append(ops._start_node(starter, name, address, identity, None))
        ops.save_state(state)
        ops.wait_ready(state, 30)
        listen = ops.pick_address("127.0.0.1:0", None, taken)
        state.gateways.append(ops._start_gateway(state, 1, listen, identity, None))
        ops.save_state(state)
        ops.wait_ready(state, 30)
        yield Cluster(data_dir, None)
    finally:
        ops.down(data_dir)


def test_partitioned_node_is_a_node_failure_and_catches_up(netns: Netns, tmp_path: Path) -> None:
    with cluster_with_node_in(netns, tmp_path / "cluster", "node-1") as cluster:
        assert cluster.node("node-1").listen.startswith(netns.inner_ip)
        s3 = client(cluster)
        s3.create_bucket(Bucket=BUCKET)
        load = Load()
        populate(s3, load, 10)
        partitioned = cluster.drive_dirs("node-1")
        assert all(index_rows(d).keys() == load.acked.keys() for d in partitioned)

        with load.running([client(cluster) for _ in range(3)]):
            time.sleep(1.5)
            cut_at = time.monotonic() - load.started
            netns.cut()
            try:
                # Long enough for the load to run on after the cut-off node is marked down
                # (rpc_s + the probes, 5 s): a cut of just that long races the detection.
                time.sleep(PARTITION_DETECTED_S + 3)
            finally:
                netns.restore()
        during = [(op, s) for op, at, s in load.latencies if at >= cut_at]
        print(
            f"\npartition: {len(during)} requests after the cut, "
            f"{sum(1 for _, s in during if s > 1)} of them over 1 s, max latency "
            f"{load.max_latency():.2f} s, PUTs refused: {load.put_errors}"
        )
        assert len(during) >= 10, "the load hardly ran during the partition"
        assert not load.wrong_bodies and not load.get_errors, load.get_errors
        assert all(status == 503 for status, _ in load.put_errors), load.put_errors
        assert load.max_latency() < REQUEST_DEADLINE_S
        verify_all(s3, load.acked)

        # The link is back: the heal queue gives the node every write it missed.
        reference = cluster.drive_dirs("node-2")

        def caught_up() -> bool:
            return all(
                {k: v[0] for k, v in index_rows(d).items()}
                == {k: v[0] for k, v in index_rows(r).items()}
                for d, r in zip(partitioned, reference, strict=True)
            )

        eventually(caught_up, 40, "the partitioned node's index holds every write")
        for d, r in zip(partitioned, reference, strict=True):
            assert data_files(d) == data_files(r)
        assert heal_status(cluster)["shards_rebuilt"] > 0
        cluster.kill_node("node-3")
        cluster.kill_node("node-5")
        verify_all(s3, load.acked)
        assert_clean_logs(cluster)
