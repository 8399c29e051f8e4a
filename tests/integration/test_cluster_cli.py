"""``huimin cluster up/status/down`` with the real node and gateway processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from huimin import cluster as ops
from huimin.cluster import ClusterError
from huimin.daemons import process_alive
from huimin.topology import load_topology
from tests.cluster_fixtures import LOCAL_TOPOLOGY, Cluster, running_cluster
from tests.integration.boto3_support import MIB, payload


def huimin(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HUIMIN_ROOT_ACCESS_KEY", "HUIMIN_ROOT_SECRET_KEY")
    }
    done = subprocess.run(
        [sys.executable, "-m", "huimin", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr + done.stdout
    return done


def status_json(data: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        huimin("cluster", "status", "--data", str(data), "--json").stdout
    )
    return doc


def credentials(up_output: str) -> tuple[str, str]:
    access = re.search(r"access key: (\S+)", up_output)
    secret = re.search(r"secret key: (\S+)", up_output)
    assert access and secret, up_output
    return access[1], secret[1]


def client(endpoint: str, access_key: str, secret_key: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )


def all_pids(doc: dict[str, Any]) -> list[int]:
    return [p["pid"] for p in doc["gateways"] + doc["nodes"]]


def thread_policies(pid: int) -> list[int]:
    """The scheduling policy of each thread of ``pid`` (threads ending meanwhile left out)."""
    policies = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            policies.append(os.sched_getscheduler(int(task.name)))
    return policies


def pid_alive(pid: int) -> bool:
    return process_alive(pid, None)


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "cluster"
    yield folder
    ops.down(folder)  # whatever a failed test left running


@pytest.mark.slow
def test_up_put_get_status_down_and_up_again(data: Path) -> None:
    up = huimin("cluster", "up", "--topology", str(LOCAL_TOPOLOGY), "--data", str(data))
    access_key, secret_key = credentials(up.stdout)

    doc = status_json(data)
    assert set(doc) == {"gateways", "nodes"}
    assert [n["name"] for n in doc["nodes"]] == [f"node-{i}" for i in range(1, 7)]
    assert all(n["alive"] for n in doc["nodes"]) and all(g["alive"] for g in doc["gateways"])
    assert set(doc["gateways"][0]) == {"endpoint", "pid", "alive", "health"}
    # The same readiness data the probes and metrics use: every set has its quorum.
    sets = doc["gateways"][0]["health"]["sets"]
    assert doc["gateways"][0]["health"]["status"] == "ready"
    assert all(s["healthy"] == s["drives"] == 12 and s["write_quorum"] == 8 for s in sets)
    for n in doc["nodes"]:
        assert set(n) == {"name", "pid", "address", "alive", "drives", "health"}
        assert all(d["ok"] for d in n["health"]["drives"].values())
        assert [d["name"] for d in n["drives"]] == ["d1", "d2"]
        assert all(Path(d["path"]).is_dir() for d in n["drives"])
        assert not n["address"].endswith(":0")
    (gateway,) = doc["gateways"]
    assert gateway["endpoint"] in up.stdout

    s3 = client(gateway["endpoint"], access_key, secret_key)
    s3.create_bucket(Bucket="cluster-cli")
    big, small = payload(3 * MIB + 5, seed=1), payload(1000, seed=2)
    s3.put_object(Bucket="cluster-cli", Key="big", Body=big)
    s3.put_object(Bucket="cluster-cli", Key="small", Body=small)
    assert s3.get_object(Bucket="cluster-cli", Key="big")["Body"].read() == big
    assert s3.get_object(Bucket="cluster-cli", Key="small")["Body"].read() == small
    # shards landed on the nodes' drive folders, not somewhere else
    assert any(any(Path(d["path"]).iterdir()) for n in doc["nodes"] for d in n["drives"])
    # every thread of every process runs SCHED_BATCH (huimin/tuning.py, sched_policy)
    if hasattr(os, "SCHED_BATCH"):
        for pid in all_pids(doc):
            policies = thread_policies(pid)
            assert len(policies) > 1  # drive or encode threads too, started after the policy
            assert set(policies) == {os.SCHED_BATCH}, pid

    again = huimin(
        "cluster", "up", "--topology", str(LOCAL_TOPOLOGY), "--data", str(data), check=False
    )
    assert again.returncode == 1 and "is running" in again.stderr

    pids = all_pids(doc)
    huimin("cluster", "down", "--data", str(data))
    assert not any(pid_alive(p) for p in pids)
    assert not (data / "cluster.json").exists()
    gone = huimin("cluster", "status", "--data", str(data), "--json", check=False)
    assert gone.returncode == 1

    # Restart on the same folder: same deployment, credentials and data.
    up2 = huimin("cluster", "up", "--topology", str(LOCAL_TOPOLOGY), "--data", str(data))
    assert credentials(up2.stdout) == (access_key, secret_key)
    doc2 = status_json(data)
    s3 = client(doc2["gateways"][0]["endpoint"], access_key, secret_key)
    assert s3.get_object(Bucket="cluster-cli", Key="big")["Body"].read() == big
    huimin("cluster", "down", "--data", str(data))
    assert not any(pid_alive(p) for p in all_pids(doc2))


@pytest.mark.slow
def test_status_text_and_two_gateways(data: Path) -> None:
    huimin(
        "cluster", "up", "--topology", str(LOCAL_TOPOLOGY), "--data", str(data), "--gateways", "2"
    )
    doc = status_json(data)
    assert len(doc["gateways"]) == 2
    assert len({g["endpoint"] for g in doc["gateways"]}) == 2
    text = huimin("cluster", "status", "--data", str(data)).stdout
    assert text.count(" pid ") == 8 and "DOWN" not in text, text
    assert "node-6" in text and "d2" in text
    cred = json.loads((data / "root-credentials.json").read_text())
    first = client(doc["gateways"][0]["endpoint"], cred["access_key"], cred["secret_key"])
    second = client(doc["gateways"][1]["endpoint"], cred["access_key"], cred["secret_key"])
    first.create_bucket(Bucket="two-gateways")
    first.put_object(Bucket="two-gateways", Key="k", Body=b"written through gateway 1")
    got = second.get_object(Bucket="two-gateways", Key="k")["Body"].read()
    assert got == b"written through gateway 1"


@pytest.mark.slow
def test_fixture_kills_and_restarts_nodes(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "c") as cluster:
        _kill_two_nodes_then_restart(cluster)
        pids = list(cluster.node_pids.values())
        started = time.monotonic()
    assert time.monotonic() - started < 5
    assert not any(pid_alive(p) for p in pids)


def _kill_two_nodes_then_restart(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="fixture")
    body = payload(2 * MIB, seed=3)
    s3.put_object(Bucket="fixture", Key="k", Body=body)
    before = cluster.node_pids
    cluster.kill_node("node-2")
    cluster.kill_node("node-5")
    state = cluster.state().status()
    assert [n["alive"] for n in state["nodes"]] == [True, False, True, True, False, True]
    assert s3.get_object(Bucket="fixture", Key="k")["Body"].read() == body  # 4 shards lost

    cluster.restart_node("node-2")
    cluster.restart_node("node-5")
    after = cluster.node_pids
    assert after["node-2"] != before["node-2"] and after["node-1"] == before["node-1"]
    assert all(n["alive"] for n in cluster.state().status()["nodes"])
    cluster.kill_node("node-1", signal.SIGSTOP)  # a hung node is restarted too
    cluster.restart_node("node-1")
    s3.put_object(Bucket="fixture", Key="k2", Body=body)
    assert s3.get_object(Bucket="fixture", Key="k2")["Body"].read() == body
    cluster.kill_node("node-3", signal.SIGSTOP)  # `down` stops a hung node without waiting 10 s


# --- start-up failures (stand-in programs; fast) -----------------------------------------------


def test_a_process_that_dies_at_start_up_fails_up_with_its_log(tmp_path: Path) -> None:
    program = [sys.executable, "-c", "import sys; print('no such drive'); sys.exit(3)"]
    with pytest.raises(ClusterError) as info:
        ops.up(tmp_path / "c", LOCAL_TOPOLOGY, program=program)
    message = str(info.value)
    assert "exited during start-up" in message and "no such drive" in message
    assert not (tmp_path / "c" / "cluster.json").exists()


def test_up_gives_up_after_the_timeout_and_stops_everything(tmp_path: Path) -> None:
    program = [sys.executable, "-c", "import time; print('stuck', flush=True); time.sleep(120)"]
    with pytest.raises(ClusterError, match="not ready after 1 s") as info:
        ops.up(tmp_path / "c", LOCAL_TOPOLOGY, program=program, ready_timeout_s=1)
    assert "--- node-1" in str(info.value) and "stuck" in str(info.value)
    pids = [int(p) for p in re.findall(r"pid (\d+)", str(info.value))]
    assert not any(pid_alive(p) for p in pids)
    assert not (tmp_path / "c" / "cluster.json").exists()


def test_configs_and_secrets(tmp_path: Path) -> None:
    program = [sys.executable, "-c", "import time; time.sleep(120)"]
    data = tmp_path / "c"
    with pytest.raises(ClusterError):
        ops.up(data, LOCAL_TOPOLOGY, program=program, ready_timeout_s=0.5)
    node = _toml(data / "node-3" / "node.toml")
    gateway = _toml(data / "gateway-1" / "gateway.toml")
    assert set(node) == {
        "name",
        "listen",
        "topology",
        "drive_root",
        "deployment_id",
        "cluster_secret",
    }
    assert set(gateway) == {
        "listen",
        "topology",
        "deployment_id",
        "cluster_secret",
        "data_dir",
        "root_access_key",
        "root_secret_key",
    }
    resolved = load_topology(Path(node["topology"]))
    assert resolved.node("node-3").address == node["listen"]
    assert len({n.address for n in resolved.nodes} | {gateway["listen"]}) == 7  # distinct ports
    assert node["drive_root"] == str(data.resolve() / "node-3")
    assert node["cluster_secret"] == gateway["cluster_secret"]
    for secret_file in ("cluster-identity.json", "root-credentials.json"):
        assert (data / secret_file).stat().st_mode & 0o777 == 0o600
    assert (data / "node-3" / "node.toml").stat().st_mode & 0o777 == 0o600
    assert (data / "gateway-1" / "gateway.toml").stat().st_mode & 0o777 == 0o600

    # A second `up` keeps the identity and, where free, the ports.
    with pytest.raises(ClusterError):
        ops.up(data, LOCAL_TOPOLOGY, program=program, ready_timeout_s=0.5)
    node2 = _toml(data / "node-3" / "node.toml")
    assert (node2["deployment_id"], node2["cluster_secret"]) == (
        node["deployment_id"],
        node["cluster_secret"],
    )
    assert node2["listen"] == node["listen"]


def test_another_drive_layout_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "c"
    program = [sys.executable, "-c", "import time; time.sleep(120)"]
    with pytest.raises(ClusterError):
        ops.up(data, LOCAL_TOPOLOGY, program=program, ready_timeout_s=0.5)
    other = tmp_path / "other.toml"
    other.write_text(LOCAL_TOPOLOGY.read_text().replace('"d2"', '"d9"'))
    with pytest.raises(ClusterError, match="another drive layout"):
        ops.up(data, other, program=program)


def test_status_of_an_empty_folder_fails(tmp_path: Path) -> None:
    done = huimin("cluster", "status", "--data", str(tmp_path), "--json", check=False)
    assert done.returncode == 1 and "no cluster" in done.stderr


def _toml(path: Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(path.read_text())
