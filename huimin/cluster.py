"""``huimin cluster up/status/down``: a topology's nodes and gateways as local processes.

Everything lives under one data folder DIR:

    DIR/cluster-identity.json    deployment id, cluster secret, drive layout (mode 0600)
    DIR/root-credentials.json    root S3 credential, as ``huimin server`` keeps it (mode 0600)
    DIR/topology.resolved.toml   the topology with port-0 addresses replaced by the ports chosen
    DIR/<node>/node.toml         one node's config; its drive folders are DIR/<node>/<drive>
    DIR/gateway-<i>/gateway.toml one gateway's config; the folder is its data_dir (heal state)
    DIR/<name>.log               stdout + stderr of each process
    DIR/cluster.json             pids and endpoints of the running cluster (removed by ``down``)

Processes are started detached (own session, re-parented away from the caller), so they outlive
``cluster up`` and a test process never has to reap them. Re-running ``up`` on a folder keeps the
deployment id, secret and credentials, so the data written before is served again; a topology
with another drive layout is refused (placement depends on it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from huimin import daemons
from huimin.daemons import Daemon, tail
from huimin.topology import (
    Topology,
    dump_topology,
    erasure_set_drives,
    join_address,
    load_topology,
    pool_set_drives,
    split_address,
    with_addresses,
)
from tenants.credentials import Credential, load_or_create_root

READY_PATH = "/_huimin/health/ready"
RESOLVED_TOPOLOGY = "topology.resolved.toml"
IDENTITY = "cluster-identity.json"
STATE = "cluster.json"


class ClusterError(Exception):
    """The cluster cannot be started, found or stopped; the message says why."""


@dataclass(frozen=True, slots=True)
class Identity:
    deployment_id: str
    cluster_secret: str
    sets: list[list[str]]  # "node/drive" per set: the layout the deployment's data depends on


@dataclass
class Proc(Daemon):
    """One process of the cluster as recorded in cluster.json."""

    config: str
    log: str
    listen: str


@dataclass
class NodeProc(Proc):
    drives: list[dict[str, str]] = field(default_factory=list)  # [{"name", "path"}]


@dataclass
class GatewayProc(Proc):
    endpoint: str = ""


@dataclass
class ClusterState:
    data_dir: str
    topology: str
    deployment_id: str
    program: list[str]  # argv prefix that runs huimin: [python, -m, huimin]
    root_access_key: str
    root_secret_key: str
    nodes: list[NodeProc]
    gateways: list[GatewayProc]

    def node(self, name: str) -> NodeProc:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ClusterError(f"no node {name!r} in this cluster ({[n.name for n in self.nodes]})")

    def processes(self) -> list[Proc]:
        return [*self.gateways, *self.nodes]

    def status(self, health: bool = True) -> dict[str, Any]:
        """The ``cluster status --json`` document. With ``health``, each live process's
        ``/_huimin/health/ready`` answer is included: per erasure set, healthy drives against
        read and write quorum (gateways), and per drive ok / free bytes (nodes) — the same data
        the readiness probes and metrics use."""
        return {
            "gateways": [
                {
                    "endpoint": g.endpoint,
                    "pid": g.pid,
                    "alive": (alive := g.alive()),
                    **({"health": readiness(g.endpoint)} if health and alive else {}),
                }
                for g in self.gateways
            ],
            "nodes": [
                {
                    "name": n.name,
                    "pid": n.pid,
                    "address": n.listen,
                    "alive": (alive := n.alive()),
                    "drives": n.drives,
                    **({"health": readiness(f"http://{n.listen}")} if health and alive else {}),
                }
                for n in self.nodes
            ],
        }


def readiness(base: str) -> dict[str, Any]:
    """A process's readiness document (or why it could not be had)."""
    try:
        with urllib.request.urlopen(base + READY_PATH, timeout=2) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
            return doc
    except urllib.error.HTTPError as exc:  # 503: not ready, still a readiness document
        try:
            return dict(json.loads(exc.read()))
        except ValueError:
            return {"status": f"HTTP {exc.code}"}
    except (OSError, ValueError) as exc:
        return {"status": "unreachable", "error": str(exc)}


def default_program() -> list[str]:
    return [sys.executable, "-m", "huimin"]


# --- files -------------------------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically, readable by the owner only (the file holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def toml_table(values: Mapping[str, str]) -> str:
    """Flat ``key = "value"`` TOML (JSON string literals are valid TOML basic strings).

    >>> print(toml_table({"name": "node-1", "listen": "127.0.0.1:9100"}), end="")
    name = "node-1"
    listen = "127.0.0.1:9100"
    """
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """One ``cluster`` command at a time per data folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / ".cluster.lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClusterError(
                f"another `huimin cluster` command is working on {data_dir}"
            ) from None
        yield


def load_identity(data_dir: Path, topology: Topology) -> Identity:
    """The deployment's id and secret: created once, then refused for another drive layout."""
    path = data_dir / IDENTITY
    sets = [[str(d) for d in s] for s in erasure_set_drives(topology)]
    if path.exists():
        doc = json.loads(path.read_text())
        grown = doc["sets"] == sets[: len(doc["sets"])] and _pools_kept(doc, topology)
        if grown and doc["sets"] != sets:
            # New pools appended: old objects stay where they are, new ones may go there.
            doc["sets"] = sets
            doc["pool_set_counts"] = [len(p) for p in pool_set_drives(topology)]
            write_private(path, json.dumps(doc, indent=1))
        if doc["sets"] != sets:
            raise ClusterError(
                f"{data_dir} holds a cluster of {_layout(doc['sets'])}; topology "
                f"{topology.name!r} gives {_layout(sets)}. Objects are placed by set, so "
                f"another drive layout would make them unreachable; use a new data folder"
            )
        return Identity(doc["deployment_id"], doc["cluster_secret"], sets)
    identity = Identity(secrets.token_hex(16), secrets.token_urlsafe(32), sets)
    doc = {**asdict(identity), "pool_set_counts": [len(p) for p in pool_set_drives(topology)]}
    write_private(path, json.dumps(doc, indent=1))
    return identity


def _pools_kept(doc: dict[str, Any], topology: Topology) -> bool:
    """The recorded pools are still the first pools of the topology, unchanged."""
    counts = [len(p) for p in pool_set_drives(topology)]
    recorded = doc.get("pool_set_counts", [len(doc["sets"])])
    return counts[: len(recorded)] == list(recorded)


def _layout(sets: list[list[str]]) -> str:
    """A layout in a few words.

    >>> _layout([["a/1", "b/1"], ["a/2", "b/2"]])
    '2 sets of 2 drives (first: a/1 b/1)'
    """
    return f"{len(sets)} sets of {len(sets[0])} drives (first: {' '.join(sets[0])})"


def load_state(data_dir: Path) -> ClusterState | None:
    path = data_dir / STATE
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    doc["nodes"] = [NodeProc(**n) for n in doc["nodes"]]
    doc["gateways"] = [GatewayProc(**g) for g in doc["gateways"]]
    return ClusterState(**doc)


def save_state(state: ClusterState) -> None:
    write_private(Path(state.data_dir) / STATE, json.dumps(asdict(state), indent=1))


# --- ports -------------------------------------------------------------------------------------


def _bindable(host: str, port: int) -> int | None:
    """Bind ``host:port`` (0: any port) as the server will, SO_REUSEADDR; the bound port or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return None
        return int(s.getsockname()[1])


def pick_address(address: str, previous: str | None, taken: set[int]) -> str:
    """A concrete ``host:port`` for ``address``; port 0 prefers the previous run's port if free."""
    host, port = split_address(address)
    if port:
        if _bindable(host, port) is None:
            raise ClusterError(f"cannot listen on {address} on this machine (in use or not local)")
        return address
    if previous is not None:
        prev_host, prev_port = split_address(previous)
        if prev_host == host and prev_port not in taken and _bindable(host, prev_port):
            taken.add(prev_port)
            return previous
    for _ in range(100):
        port = _bindable(host, 0) or 0
        if port and port not in taken:
            taken.add(port)
            return join_address(host, port)
    raise ClusterError(f"no free port on {host}")


def resolve(topology: Topology, data_dir: Path, gateways: int) -> tuple[Topology, list[str]]:
    """The topology with concrete node addresses, and one listen address per gateway."""
    previous_nodes: dict[str, str] = {}
    resolved_path = data_dir / RESOLVED_TOPOLOGY
    if resolved_path.exists():
        with contextlib.suppress(ValueError):
            previous_nodes = {n.name: n.address for n in load_topology(resolved_path).nodes}
    taken: set[int] = set()
    for node in topology.nodes:
        taken.add(split_address(node.address)[1])
    addresses = {
        n.name: pick_address(n.address, previous_nodes.get(n.name), taken) for n in topology.nodes
    }
    listens = []
    for i in range(1, gateways + 1):
        previous = None
        config = data_dir / f"gateway-{i}" / "gateway.toml"
        if config.exists():
            with contextlib.suppress(ValueError, KeyError):
                previous = str(_read_toml(config)["listen"])
        listens.append(pick_address("127.0.0.1:0", previous, taken))
    return with_addresses(topology, addresses), listens


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(path.read_text())


# --- up / down ---------------------------------------------------------------------------------


def _spawn(argv: Sequence[str], log: Path, env: Mapping[str, str] | None) -> tuple[int, int | None]:
    try:
        return daemons.spawn_detached(argv, log, env)
    except ChildProcessError as exc:
        raise ClusterError(str(exc)) from None


def _stop(procs: Sequence[Daemon], timeout_s: float = 10) -> None:
    try:
        daemons.stop(procs, timeout_s)
    except ChildProcessError as exc:
        raise ClusterError(str(exc)) from None


def _check_names(topology: Topology, gateways: int) -> None:
    reserved = {f"gateway-{i}" for i in range(1, gateways + 1)}
    clash = sorted(reserved & {n.name for n in topology.nodes})
    if clash:
        raise ClusterError(f"node name(s) {clash} clash with the gateways' folders")
    for node in topology.nodes:
        if any(d.name == "node.toml" for d in node.drives):
            raise ClusterError(f"node {node.name!r}: a drive may not be called node.toml")


def up(
    data_dir: Path,
    topology_path: Path,
    gateways: int = 1,
    root: Credential | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 60,
    program: Sequence[str] | None = None,
) -> ClusterState:
    """Start the topology's nodes and ``gateways`` gateways; return once every gateway is ready.

    ``root``: the root S3 credential (default: the one kept in DIR, else a new one). ``env``: the
    processes' environment (default: ours). ``program``: argv prefix running huimin.
    """
    if gateways < 1:
        raise ClusterError("--gateways must be >= 1")
    data_dir = data_dir.resolve()
    topology = load_topology(topology_path)
    _check_names(topology, gateways)
    with locked(data_dir):
        old = load_state(data_dir)
        if old is not None:
            running = [p.name for p in old.processes() if p.alive()]
            if running:
                raise ClusterError(
                    f"a cluster is running in {data_dir} ({', '.join(running)}); "
                    f"`huimin cluster down --data {data_dir}` first"
                )
        identity = load_identity(data_dir, topology)
        cred = load_or_create_root(
            data_dir, root.access_key if root else None, root.secret_key if root else None
        )
        resolved, listens = resolve(topology, data_dir, gateways)
        resolved_path = data_dir / RESOLVED_TOPOLOGY
        resolved_path.write_text(
            dump_topology(
                resolved,
                f"Generated by `huimin cluster up` from {topology_path.resolve()}.\n"
                "Port-0 addresses replaced by the ports chosen; regenerated on every `up`.",
            )
        )
        state = ClusterState(
            data_dir=str(data_dir),
            topology=str(resolved_path),
            deployment_id=identity.deployment_id,
            program=list(program or default_program()),
            root_access_key=cred.access_key,
            root_secret_key=cred.secret_key,
            nodes=[],
            gateways=[],
        )
        try:
            for node in resolved.nodes:
                state.nodes.append(_start_node(state, node.name, node.address, identity, env))
            save_state(state)  # before waiting: an interrupted `up` can still be brought down
            # Nodes first: a gateway that finds a node not listening yet marks it down for a
            # second, and a bucket created in that second would miss the node's drives.
            # (Not ready in time: start the gateways anyway, wait_ready says what is wrong.)
            deadline = time.monotonic() + ready_timeout_s
            while time.monotonic() < deadline and not all(
                _accepts(n.listen) or not n.alive() for n in state.nodes
            ):
                time.sleep(0.05)
            for i, listen in enumerate(listens, start=1):
                state.gateways.append(_start_gateway(state, i, listen, identity, env))
            save_state(state)
            wait_ready(state, ready_timeout_s)
        except BaseException:
            with contextlib.suppress(ClusterError):
                _stop(state.processes())
            (data_dir / STATE).unlink(missing_ok=True)
            raise
        return state


def _start_node(
    state: ClusterState,
    name: str,
    listen: str,
    identity: Identity,
    env: Mapping[str, str] | None,
) -> NodeProc:
    data_dir = Path(state.data_dir)
    node_dir = data_dir / name
    topology = load_topology(Path(state.topology))
    drives = []
    for d in topology.node(name).drives:
        (node_dir / d.name).mkdir(parents=True, exist_ok=True)
        drives.append({"name": d.name, "path": str(node_dir / d.name)})
    config = node_dir / "node.toml"
    write_private(
        config,
        toml_table(
            {
                "name": name,
                "listen": listen,
                "topology": state.topology,
                "drive_root": str(node_dir),
                "deployment_id": identity.deployment_id,
                "cluster_secret": identity.cluster_secret,
            }
        ),
    )
    log = data_dir / f"{name}.log"
    pid, start = _spawn([*state.program, "node", "--config", str(config)], log, env)
    return NodeProc(name, pid, start, str(config), str(log), listen, drives)


def _start_gateway(
    state: ClusterState, index: int, listen: str, identity: Identity, env: Mapping[str, str] | None
) -> GatewayProc:
    data_dir = Path(state.data_dir)
    name = f"gateway-{index}"
    config = data_dir / name / "gateway.toml"
    write_private(
        config,
        toml_table(
            {
                "listen": listen,
                "topology": state.topology,
                "deployment_id": identity.deployment_id,
                "cluster_secret": identity.cluster_secret,
                # Per-gateway state (heal progress); the root credential is passed explicitly.
                "data_dir": str(data_dir / name),
                "root_access_key": state.root_access_key,
                "root_secret_key": state.root_secret_key,
            }
        ),
    )
    log = data_dir / f"{name}.log"
    pid, start = _spawn([*state.program, "gateway", "--config", str(config)], log, env)
    host, port = split_address(listen)
    endpoint = f"http://{join_address(host, port)}"
    return GatewayProc(name, pid, start, str(config), str(log), listen, endpoint)


def _accepts(listen: str) -> bool:
    host, port = split_address(listen)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _ready(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + READY_PATH, timeout=2) as r:
            return int(r.status) == 200
    except OSError:
        return False


def wait_ready(state: ClusterState, timeout_s: float) -> None:
    """Wait until every node accepts connections and every gateway answers ready."""
    deadline = time.monotonic() + timeout_s
    pending: list[Proc] = state.processes()
    while pending:
        dead = [p for p in state.processes() if not p.alive()]
        if dead:
            raise ClusterError(
                f"{', '.join(p.name for p in dead)} exited during start-up\n" + _tails(dead)
            )
        pending = [
            p
            for p in pending
            if not (_ready(p.endpoint) if isinstance(p, GatewayProc) else _accepts(p.listen))
        ]
        if pending and time.monotonic() > deadline:
            raise ClusterError(
                f"not ready after {timeout_s:.0f} s: {', '.join(p.name for p in pending)}\n"
                + _tails(state.processes())
            )
        if pending:
            time.sleep(0.1)


def _tails(procs: Sequence[Proc]) -> str:
    return "\n".join(f"--- {p.name} (pid {p.pid}, {p.log}):\n{tail(Path(p.log))}" for p in procs)


def status(data_dir: Path) -> ClusterState:
    state = load_state(data_dir.resolve())
    if state is None:
        raise ClusterError(f"no cluster in {data_dir} (no {STATE}); `huimin cluster up` starts one")
    return state


def down(data_dir: Path, timeout_s: float = 10) -> list[str]:
    """Stop every process of the cluster in ``data_dir``; the names of those that were running."""
    data_dir = data_dir.resolve()
    with locked(data_dir):
        state = load_state(data_dir)
        if state is None:
            return []
        procs = state.processes()
        running = [p.name for p in procs if p.alive()]
        _stop(procs, timeout_s)
        (data_dir / STATE).unlink(missing_ok=True)
        return running


def start_node(
    data_dir: Path, name: str, env: Mapping[str, str] | None = None, ready_timeout_s: float = 30
) -> NodeProc:
    """(Re)start a stopped node of a running cluster with its config; wait until it listens."""
    data_dir = data_dir.resolve()
    with locked(data_dir):
        state = status(data_dir)
        old = state.node(name)
        if old.alive():
            raise ClusterError(f"node {name} is running (pid {old.pid})")
        log = Path(old.log)
        pid, start = _spawn([*state.program, "node", "--config", old.config], log, env)
        new = NodeProc(name, pid, start, old.config, old.log, old.listen, old.drives)
        state.nodes = [new if n.name == name else n for n in state.nodes]
        save_state(state)
    deadline = time.monotonic() + ready_timeout_s
    while not _accepts(new.listen):
        if not new.alive() or time.monotonic() > deadline:
            raise ClusterError(f"node {name} did not come back\n{tail(log)}")
        time.sleep(0.05)
    return new
