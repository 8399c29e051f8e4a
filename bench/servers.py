"""The server under test: an embedded ``huimin server`` started here, a ``huimin cluster``
brought up here (or found running), or any S3 endpoint. Each gives the endpoint, credentials,
the processes whose CPU and memory are charged, and, where it can, a way to lose ``m`` shards
for the degraded GET (``Faults``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.client import Credentials
from bench.cpu import ServerProcess

Log = Callable[[str], None]
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parents[1]
DEFAULT_TOPOLOGY = REPO / "topologies" / "local.toml"


class Faults(Protocol):
    """Loses as many shards as the erasure code tolerates, then brings them back."""

    description: str

    def lose(self) -> None: ...

    def restore(self) -> None: ...


@dataclass
class Target:
    """The server under test. ``processes()`` is re-read each time (nodes restart)."""

    endpoint: str
    credentials: Credentials
    label: str  # "embedded", "cluster (6 nodes, 1 gateway)", "endpoint http://..."
    processes: Callable[[], Sequence[ServerProcess]]
    faults: Faults | None = None
    notes: list[str] = field(default_factory=list)
    gateways: tuple[str, ...] = ()  # a cluster's gateways' endpoints, when more than one

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Where requests go, in turn (``S3Client``)."""
        return self.gateways or (self.endpoint,)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/_huimin/health/ready", timeout=1) as r:
            return int(r.status) == 200
    except OSError:
        return False


def _wait_ready(endpoint: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; log: {log_path}")
        if _ready(endpoint):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {_READY_TIMEOUT_S:.0f} s; log: {log_path}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class DriveFolderFaults:
    """Embedded server: move ``count`` drive folders aside while it runs, then move them back
    (same inode: the drive recognises its folder again)."""

    data_dir: Path
    count: int
    description: str = ""
    _moved: list[tuple[Path, Path]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.description = f"{self.count} drive folders moved away"

    def lose(self) -> None:
        drives = sorted(self.data_dir.glob("drive-*"))[: self.count]
        for d in drives:
            aside = d.with_name(f".bench-aside-{d.name}")
            d.rename(aside)
            self._moved.append((aside, d))

    def restore(self) -> None:
        while self._moved:
            aside, home = self._moved.pop()
            aside.rename(home)


@contextmanager
def embedded(
    data_dir: Path | None, server_env: Mapping[str, str], region: str, log: Log
) -> Iterator[Target]:
    """``huimin server`` on 127.0.0.1 in a child process, with throw-away root credentials.

    Its data lives in a temp folder (removed afterwards) unless ``data_dir`` is given (kept:
    the LIST bucket is populated once there). The server log is kept when it holds a traceback.
    """
    work = Path(tempfile.mkdtemp(prefix="huimin-bench-"))
    data = data_dir or work / "data"
    log_path = work / "server.log"
    credentials = Credentials(
        access_key="BENCH" + secrets.token_hex(8).upper(),
        secret_key=secrets.token_urlsafe(30),
        region=region,
    )
    env = {
        **os.environ,
        **server_env,
        "HUIMIN_ROOT_ACCESS_KEY": credentials.access_key,
        "HUIMIN_ROOT_SECRET_KEY": credentials.secret_key,
        "HUIMIN_REGION": region,
    }
    parity = int(server_env.get("HUIMIN_EC_PARITY_SHARDS", "4"))
    endpoint = f"http://127.0.0.1:{_free_port()}"
    keep_log = False
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "huimin", "server", str(data), "--listen", endpoint[7:]],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            _wait_ready(endpoint, process, log_path)
            log(f"embedded server pid {process.pid} at {endpoint}, data {data}")
            procs = [ServerProcess("server", "server", process.pid)]
            yield Target(
                endpoint,
                credentials,
                "embedded (huimin server, one process)",
                lambda: procs,
                DriveFolderFaults(data, parity),
            )
        except BaseException:
            keep_log = True
            raise
        finally:
            _stop(process)
            server_log = log_path.read_text(errors="replace")
            if "Traceback" in server_log or keep_log:
                keep_log = True
                log(f"server log kept (it has a traceback or the run failed): {log_path}")
            if keep_log:
                if data_dir is None:
                    shutil.rmtree(work / "data", ignore_errors=True)
            else:
                shutil.rmtree(work, ignore_errors=True)


def _huimin(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "huimin", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"huimin {' '.join(args)} failed:\n{done.stderr}{done.stdout}")
    return done.stdout


def cluster_processes(status: Mapping[str, Any]) -> list[ServerProcess]:
    """Gateways and nodes from ``huimin cluster status --json``.

    >>> cluster_processes({"gateways": [{"endpoint": "http://h:1", "pid": 10}],
    ...                    "nodes": [{"name": "node-1", "pid": 11, "address": "h:2"}]})
    [ServerProcess(name='gateway-1', kind='gateway', pid=10), ServerProcess(name='node-1', \
kind='node', pid=11)]
    """
    procs = [
        ServerProcess(f"gateway-{i}", "gateway", int(g["pid"]))
        for i, g in enumerate(status["gateways"], start=1)
    ]
    procs += [ServerProcess(str(n["name"]), "node", int(n["pid"])) for n in status["nodes"]]
    return procs


def nodes_to_kill(topology: Mapping[str, Any]) -> int:
    """Whole nodes the topology survives: parity shards over the most shards one node holds of
    a set (drives are dealt round-robin over nodes, so a node's drives are its shards).

    >>> nodes = [{"drives": [{}, {}]}] * 6
    >>> nodes_to_kill({"erasure": {"parity_shards": 4}, "nodes": nodes})
    2
    """
    m = int(topology["erasure"]["parity_shards"])
    per_node = max(len(n["drives"]) for n in topology["nodes"])
    return max(1, m // per_node)


@dataclass
class NodeFaults:
    """Cluster: SIGKILL whole nodes (as many as the topology survives), restart them after."""

    data_dir: Path
    count: int
    env: Mapping[str, str] | None
    description: str = ""
    _killed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.description = f"{self.count} nodes SIGKILLed"

    def lose(self) -> None:
        status = json.loads(_huimin("cluster", "status", "--data", str(self.data_dir), "--json"))
        victims = status["nodes"][-self.count :]
        for node in victims:
            os.kill(int(node["pid"]), signal.SIGKILL)
            self._killed.append(str(node["name"]))
        deadline = time.monotonic() + 15
        while any(_alive(int(n["pid"])) for n in victims):
            if time.monotonic() > deadline:
                raise RuntimeError(f"nodes {self._killed} did not die on SIGKILL")
            time.sleep(0.05)

    def restore(self) -> None:
        from huimin import cluster as cluster_ops

        while self._killed:
            cluster_ops.start_node(self.data_dir, self._killed.pop(), env=self.env)


@contextmanager
def cluster(
    data_dir: Path | None,
    topology: Path,
    gateways: int,
    server_env: Mapping[str, str],
    region: str,
    log: Log,
    prepare: Callable[[Path], None] | None = None,
) -> Iterator[Target]:
    """``huimin cluster up`` (a temp folder unless ``data_dir``), bench, ``cluster down``.

    The root credential is the one ``cluster up`` keeps in DIR/root-credentials.json.
    ``prepare`` runs on the data folder while no cluster process runs, before the timed
    ``up`` (a new folder is brought up and down once first, to create its layout).
    """
    work = None if data_dir is not None else Path(tempfile.mkdtemp(prefix="huimin-bench-cl-"))
    folder = (data_dir or (work / "cluster" if work else Path())).resolve()
    # On top of our environment without its HUIMIN_* settings (see daemons.spawn_detached).
    env = {**server_env, "HUIMIN_REGION": region}

    def up() -> None:
        # In this process, not through `huimin cluster up`: the CLI hands its processes no
        # HUIMIN_* variables (their config files rule), and --server-env must reach them.
        from huimin import cluster as cluster_ops

        cluster_ops.up(folder, topology, gateways=gateways, env=env)

    if prepare is not None:
        if not (folder / "root-credentials.json").exists():
            up()
            _huimin("cluster", "down", "--data", str(folder))
        prepare(folder)
    up()
    try:
        root = json.loads((folder / "root-credentials.json").read_text())
        credentials = Credentials(root["access_key"], root["secret_key"], region)

        def processes() -> list[ServerProcess]:
            status = json.loads(_huimin("cluster", "status", "--data", str(folder), "--json"))
            return cluster_processes(status)

        first = json.loads(_huimin("cluster", "status", "--data", str(folder), "--json"))
        endpoint = first["gateways"][0]["endpoint"]
        topo = tomllib.loads(topology.read_text())
        kills = nodes_to_kill(topo)
        cached: list[list[ServerProcess]] = [cluster_processes(first)]

        def current() -> list[ServerProcess]:
            if not all(_alive(p.pid) for p in cached[0]):
                cached[0] = processes()
            return cached[0]

        log(
            f"cluster at {endpoint}: {len(first['gateways'])} gateway(s), "
            f"{len(first['nodes'])} nodes, data {folder}"
        )
        target = Target(
            endpoint,
            credentials,
            f"cluster ({topology.name}: {len(first['nodes'])} nodes, "
            f"{len(first['gateways'])} gateway(s))",
            current,
            NodeFaults(folder, kills, env),
            gateways=tuple(g["endpoint"] for g in first["gateways"]),
        )
        if len(first["gateways"]) > 1:
            target.notes.append(
                f"requests go to the {len(first['gateways'])} gateways in turn, one request each"
            )
        yield target
    finally:
        try:
            _huimin("cluster", "down", "--data", str(folder))
        finally:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    try:
        return state.read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


@contextmanager
def endpoint(
    url: str,
    credentials: Credentials,
    server_pids: Sequence[int],
    log: Log,
) -> Iterator[Target]:
    """Any S3 endpoint; CPU and memory are charged to ``server_pids`` (none: not measured)."""
    procs = [ServerProcess(f"pid-{pid}", "server", pid) for pid in server_pids]
    if not procs:
        log("no --server-pid: server CPU and memory are not measured")
    target = Target(url, credentials, f"endpoint {url}", lambda: procs)
    target.notes.append("degraded GET skipped: the suite cannot break an external store")
    yield target
