"""A real distributed cluster for a test: node processes + gateway(s) started by ``huimin.cluster``.

Use the ``cluster`` fixture (6 nodes x 2 drives, EC 8+4, from topologies/local.toml), or
``running_cluster(data_dir, ...)`` for another topology, more gateways or extra environment:

    def test_reads_survive_two_nodes(cluster: Cluster) -> None:
        s3 = cluster.s3()
        ...
        cluster.kill_node("node-1")
        cluster.kill_node("node-2")
        ...
        cluster.restart_node("node-1")
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from huimin import cluster as ops
from huimin.cluster import ClusterState, NodeProc
from huimin.daemons import send_signal
from tenants.credentials import Credential

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REPO = Path(__file__).resolve().parents[1]
LOCAL_TOPOLOGY = REPO / "topologies" / "local.toml"
ACCESS_KEY = "HMCLUSTERACCESSKEY01"
SECRET_KEY = "cluster-test-secret-key-0123456789abcdef"
REGION = "us-east-1"


@dataclass
class Cluster:
    """A running cluster: its endpoint(s), credentials, and its nodes to kill and restart."""

    data_dir: Path
    env: Mapping[str, str] | None
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def state(self) -> ClusterState:
        return ops.status(self.data_dir)

    @property
    def endpoints(self) -> list[str]:
        return [g.endpoint for g in self.state().gateways]

    @property
    def endpoint(self) -> str:
        return self.endpoints[0]

    def node(self, name: str) -> NodeProc:
        return self.state().node(name)

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.state().nodes]

    @property
    def node_pids(self) -> dict[str, int]:
        return {n.name: n.pid for n in self.state().nodes}

    def drive_dirs(self, node: str) -> list[Path]:
        return [Path(d["path"]) for d in self.node(node).drives]

    def log(self, name: str) -> str:
        """The log of ``name`` (a node name or ``gateway-1``, ...)."""
        return (self.data_dir / f"{name}.log").read_text(errors="replace")

    def s3(self, endpoint: str | None = None, **config: Any) -> S3Client:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def kill_node(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the node; for SIGKILL/SIGTERM, return once it is gone.

        SIGSTOP freezes it (a hung node), SIGCONT thaws it.
        """
        node = self.node(name)
        if not send_signal(node, sig):
            raise AssertionError(f"node {name} (pid {node.pid}) is not running")
        if sig in (signal.SIGKILL, signal.SIGTERM):
            deadline = time.monotonic() + 15
            while node.alive():
                if time.monotonic() > deadline:
                    raise AssertionError(f"node {name} did not exit on signal {sig}")
                time.sleep(0.02)

    def restart_node(self, name: str) -> None:
        """Start the node again (killing it first if it still runs, e.g. stopped by SIGSTOP);
        returns once it accepts connections."""
        node = self.node(name)
        if node.alive():
            self.kill_node(name, signal.SIGKILL)
        ops.start_node(self.data_dir, name, env=self.env)

    def down(self) -> None:
        ops.down(self.data_dir)


@contextlib.contextmanager
def running_cluster(
    data_dir: Path,
    topology: Path = LOCAL_TOPOLOGY,
    gateways: int = 1,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """``huimin cluster up`` for the block, ``down`` after it (also on failure)."""
    env = {**os.environ, **extra_env} if extra_env else None
    root = Credential(ACCESS_KEY, SECRET_KEY)
    ops.up(data_dir, topology, gateways=gateways, root=root, env=env)
    try:
        yield Cluster(data_dir.resolve(), env)
    finally:
        ops.down(data_dir)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh local cluster (topologies/local.toml: 6 nodes x 2 drives, EC 8+4, one gateway)."""
    with running_cluster(tmp_path / "cluster") as c:
        yield c
