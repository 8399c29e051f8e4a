"""The topology file: nodes, drives, erasure-set shape and pools (TOML, validated on load).

```toml
name = "local"
version = 1                 # bumped on every change; nodes refuse requests carrying another one
[erasure]
data_shards = 8
parity_shards = 4
codec = "isal"              # optional
block_size_bytes = 4194304  # optional
[[nodes]]
name = "node-1"
address = "127.0.0.1:0"     # host:port; port 0 = chosen by `huimin cluster up`
region = "cn-jilin"         # optional label
drives = [ { name = "d1", capacity_bytes = 10000000000 } ]
[[pools]]                   # optional; default: one pool of all nodes
nodes = ["node-1", "..."]
```

Set layout (``erasure_set_drives``): within a pool, drives are dealt round-robin across nodes
(drive 1 of every node, then drive 2 of every node, ...) and cut into sets of k+m consecutive
drives, so each set spreads over as many nodes as possible. A topology where some set would hold
more than m drives of one node is refused: losing that node would lose data.

Pure: parsing, validation and arithmetic, no IO beyond ``load_topology`` reading the file.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from erasure.codec import DEFAULT_CODEC, get_codec

# Node and drive names become folder names: no separators, no dot-only names.
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
Name = Annotated[str, Field(pattern=_NAME)]


class TopologyError(ValueError):
    """The topology file is unreadable or describes an unsafe or impossible layout."""


@dataclass(frozen=True, slots=True)
class DriveRef:
    """One drive of the cluster: a drive name on a node."""

    node: str
    drive: str

    def __str__(self) -> str:
        return f"{self.node}/{self.drive}"


def split_address(address: str) -> tuple[str, int]:
    """``"10.20.0.11:9100"`` -> ("10.20.0.11", 9100); ``"[::1]:0"`` -> ("::1", 0).

    >>> split_address("[::1]:9100")
    ('::1', 9100)
    """
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"address {address!r} is not host:port (port 0-65535)")
    return host, int(port)


def join_address(host: str, port: int) -> str:
    """Inverse of ``split_address``.

    >>> join_address("::1", 9100)
    '[::1]:9100'
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DriveSpec(_Model):
    name: Name
    capacity_bytes: int = Field(gt=0)


class NodeSpec(_Model):
    name: Name
    address: str
    region: str | None = None
    drives: list[DriveSpec] = Field(min_length=1)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        split_address(value)
        return value

    @model_validator(mode="after")
    def _unique_drives(self) -> NodeSpec:
        dupes = _duplicates(d.name for d in self.drives)
        if dupes:
            raise ValueError(f"node {self.name!r} lists drive(s) {dupes} more than once")
        return self


class ErasureSpec(_Model):
    data_shards: int = Field(ge=1)
    parity_shards: int = Field(ge=1)
    codec: str = DEFAULT_CODEC
    block_size_bytes: int = Field(default=4 * 1024 * 1024, ge=4096, le=64 * 1024 * 1024)

    @property
    def set_size(self) -> int:
        return self.data_shards + self.parity_shards

    @model_validator(mode="after")
    def _codec_supports(self) -> ErasureSpec:
        get_codec(self.codec, self.data_shards, self.parity_shards)  # ValueError names the limit
        return self


class PoolSpec(_Model):
    nodes: list[Name] = Field(min_length=1)


class Topology(_Model):
    name: Name
    version: int = Field(ge=1)
    erasure: ErasureSpec
    nodes: list[NodeSpec] = Field(min_length=1)
    pools: list[PoolSpec] | None = None

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def pool_nodes(self) -> list[list[NodeSpec]]:
        """The nodes of each pool, in pool order (default: one pool of every node)."""
        if self.pools is None:
            return [list(self.nodes)]
        return [[self.node(n) for n in pool.nodes] for pool in self.pools]

    @model_validator(mode="after")
    def _check_layout(self) -> Topology:
        dupes = _duplicates(n.name for n in self.nodes)
        if dupes:
            raise ValueError(f"node name(s) {dupes} appear more than once")
        if self.pools is not None:
            listed = [n for pool in self.pools for n in pool.nodes]
            known = {n.name for n in self.nodes}
            problems = (
                [f"unknown node(s) {sorted(set(listed) - known)}"] if set(listed) - known else []
            )
            if _duplicates(listed):
                problems.append(f"node(s) {_duplicates(listed)} in more than one pool")
            if known - set(listed):
                problems.append(f"node(s) {sorted(known - set(listed))} in no pool")
            if problems:
                raise ValueError("pools: " + "; ".join(problems))
        check_layout(self)
        return self


def _duplicates(names: Iterable[str]) -> list[str]:
    return sorted(n for n, c in Counter(names).items() if c > 1)


def _pool_drive_order(nodes: Sequence[NodeSpec]) -> list[DriveRef]:
    """Drives dealt round-robin across nodes: drive 1 of each node, then drive 2, ...

    >>> a = NodeSpec(name="a", address="h:1", drives=[{"name": "x", "capacity_bytes": 1}] * 1)
    >>> b = NodeSpec(name="b", address="h:2", drives=[
    ...     {"name": "x", "capacity_bytes": 1}, {"name": "y", "capacity_bytes": 1}])
    >>> [str(d) for d in _pool_drive_order([a, b])]
    ['a/x', 'b/x', 'b/y']
    """
    order: list[DriveRef] = []
    for slot in range(max(len(n.drives) for n in nodes)):
        order.extend(DriveRef(n.name, n.drives[slot].name) for n in nodes if slot < len(n.drives))
    return order


def _pool_sets(topology: Topology) -> list[list[list[DriveRef]]]:
    size = topology.erasure.set_size
    pools = []
    for index, nodes in enumerate(topology.pool_nodes()):
        order = _pool_drive_order(nodes)
        if len(order) % size:
            raise ValueError(
                f"pool {index} has {len(order)} drives, not a multiple of the erasure-set size "
                f"{size} (k={topology.erasure.data_shards} + m={topology.erasure.parity_shards})"
            )
        pools.append([order[i : i + size] for i in range(0, len(order), size)])
    return pools


def check_layout(topology: Topology) -> None:
    """Refuse a layout where losing one node would cost some set more than m shards."""
    m = topology.erasure.parity_shards
    for number, drives in enumerate(s for pool in _pool_sets(topology) for s in pool):
        node, count = Counter(d.node for d in drives).most_common(1)[0]
        if count > m:
            raise ValueError(
                f"erasure set {number} would hold {count} shards on node {node!r} but "
                f"parity_shards m={m}: losing that node would lose data; spread the drives "
                f"over more nodes or raise m"
            )


def pool_set_drives(topology: Topology) -> list[list[list[DriveRef]]]:
    """The erasure sets of each pool (pools in topology order)."""
    return _pool_sets(topology)


def erasure_set_drives(topology: Topology) -> list[list[DriveRef]]:
    """The erasure sets, in order (pool 0's sets first), each a list of k+m drives in set order.

    This is the layout the gateway builds its sets from; it depends only on the topology's nodes,
    drives, pools and set size, never on addresses.

    >>> t = Topology.model_validate({
    ...     "name": "t", "version": 1, "erasure": {"data_shards": 2, "parity_shards": 1},
    ...     "nodes": [{"name": f"n{i}", "address": "127.0.0.1:0",
    ...                "drives": [{"name": "a", "capacity_bytes": 1},
    ...                           {"name": "b", "capacity_bytes": 1}]} for i in (1, 2, 3)]})
    >>> [[str(d) for d in s] for s in erasure_set_drives(t)]
    [['n1/a', 'n2/a', 'n3/a'], ['n1/b', 'n2/b', 'n3/b']]
    """
    return [s for pool in _pool_sets(topology) for s in pool]


def load_topology(path: Path) -> Topology:
    """Read and validate a topology file; ``TopologyError`` says what is wrong and where."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TopologyError(f"{path}: {exc}") from exc
    return parse_topology(doc, str(path))


def parse_topology(doc: object, source: str = "topology") -> Topology:
    try:
        return Topology.model_validate(doc)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {where or '(top level)'}: {err['msg']}")
        raise TopologyError(f"{source}: invalid topology\n" + "\n".join(lines)) from None


def dump_topology(topology: Topology, header: str = "") -> str:
    """The topology as TOML (``load_topology`` reads it back to an equal value).

    JSON string literals are valid TOML basic strings, so ``json.dumps`` quotes them.
    """
    q = json.dumps
    e = topology.erasure
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [
        f"name = {q(topology.name)}",
        f"version = {topology.version}",
        "",
        "[erasure]",
        f"data_shards = {e.data_shards}",
        f"parity_shards = {e.parity_shards}",
        f"codec = {q(e.codec)}",
        f"block_size_bytes = {e.block_size_bytes}",
    ]
    for node in topology.nodes:
        lines += ["", "[[nodes]]", f"name = {q(node.name)}", f"address = {q(node.address)}"]
        if node.region is not None:
            lines.append(f"region = {q(node.region)}")
        drives = ", ".join(
            f"{{ name = {q(d.name)}, capacity_bytes = {d.capacity_bytes} }}" for d in node.drives
        )
        lines.append(f"drives = [{drives}]")
    for pool in topology.pools or []:
        lines += ["", "[[pools]]", f"nodes = [{', '.join(q(n) for n in pool.nodes)}]"]
    return "\n".join(lines) + "\n"


def with_addresses(topology: Topology, addresses: dict[str, str]) -> Topology:
    """A copy of ``topology`` with the given node addresses replaced (same version: the layout is
    unchanged, only where to reach the nodes)."""
    doc = topology.model_dump()
    for node in doc["nodes"]:
        node["address"] = addresses.get(node["name"], node["address"])
    return parse_topology(doc)


def is_valid_name(name: str) -> bool:
    return re.fullmatch(_NAME, name) is not None


def rebuild_seconds(drive_bytes: int, rebuild_rate_mb_s: float) -> float:
    """Time to rebuild one lost drive when ``rebuild_rate_mb_s`` MB/s (10^6) of its shard data is
    rebuilt. Each rebuilt byte needs k bytes read from the survivors (k shards decode one), so the
    survivors together read k x the drive's size at k x the rate, in parallel.

    REQUIREMENTS.md's figure: an 8 TB drive at 200 MB/s takes ~11 h (and reads 8 x 8 TB = 64 TB
    from the survivors for EC 8+4); at 50 MB/s ~44 h.

    >>> round(rebuild_seconds(8 * 10**12, 200) / 3600, 1)
    11.1
    >>> round(rebuild_seconds(8 * 10**12, 50) / 3600, 1)
    44.4
    """
    if rebuild_rate_mb_s <= 0:
        raise ValueError(f"rebuild rate must be > 0 MB/s, got {rebuild_rate_mb_s}")
    return drive_bytes / (rebuild_rate_mb_s * 10**6)


def node_losses_tolerated(shards_per_node: Sequence[int], m: int) -> tuple[int, ...]:
    """Drives one set can still lose after losing any n whole nodes, for n = 0, 1, ... while
    non-negative. The worst n nodes are the n holding most of the set's shards.

    6 nodes x 2 shards of an 8+4 set: any 4 drives, or 1 node + 2 drives, or 2 nodes:

    >>> node_losses_tolerated([2, 2, 2, 2, 2, 2], 4)
    (4, 2, 0)

    4 nodes x 3 shards (48 drives in sets of 12): one node + one drive:

    >>> node_losses_tolerated([3, 3, 3, 3], 4)
    (4, 1)
    """
    worst_first = sorted(shards_per_node, reverse=True)
    left = [m]
    for count in worst_first:
        if left[-1] - count < 0:
            break
        left.append(left[-1] - count)
    return tuple(left)


@dataclass(frozen=True, slots=True)
class CapacityReport:
    """Capacity and failure tolerance of a topology; see ``capacity_report``."""

    name: str
    version: int
    k: int
    m: int
    codec: str
    node_count: int
    drive_count: int
    pool_count: int
    sets: tuple[tuple[DriveRef, ...], ...]
    raw_bytes: int
    usable_bytes: int
    drives_tolerated: int  # any this many drives, wherever they are
    nodes_tolerated: int  # any this many whole nodes
    drives_after_node_losses: tuple[int, ...]  # [n]: drives still tolerated after n nodes died
    max_shards_per_node: int  # of one set on one node
    largest_drive_bytes: int
    rebuild_rate_mb_s: float
    rebuild_s: float  # one largest drive at rebuild_rate_mb_s of rebuilt data
    rebuild_read_bytes: int  # read from the survivors for that rebuild (k x the drive)


def capacity_report(topology: Topology, rebuild_rate_mb_s: float = 200) -> CapacityReport:
    """Raw and usable capacity, failure tolerance and one drive's rebuild time.

    Model:
    - usable: each set stores k data shards per k+m written, all shards of an object the same
      size, so a set is full when its smallest drive is: usable = sum over sets of
      k x smallest drive of the set, which is raw x k/(k+m) when drives are equal. Rebuild
      headroom and metadata are not subtracted.
    - drives: any m drives may fail (worst case: all in one set).
    - nodes: a set survives losing n nodes while the n nodes holding most of its shards hold
      <= m of them (for equal spreads: floor(m / shards per node)); the cluster survives the
      minimum over its sets.
    - rebuild: one largest drive rebuilt at ``rebuild_rate_mb_s`` of rebuilt shard data, reading
      k x its size from the survivors (``rebuild_seconds``).

    The city's array, 6 nodes x 4 x 8 TB, EC 8+4: 192 TB raw, 128 TB usable, two shards of each
    set per node -> any 2 nodes (or 1 node + 2 drives, or any 4 drives); 11.1 h per drive at
    200 MB/s.
    """
    e = topology.erasure
    capacity = {
        DriveRef(n.name, d.name): d.capacity_bytes for n in topology.nodes for d in n.drives
    }
    sets = erasure_set_drives(topology)
    per_set_losses = [
        node_losses_tolerated(list(Counter(d.node for d in s).values()), e.parity_shards)
        for s in sets
    ]
    nodes_tolerated = min(len(losses) - 1 for losses in per_set_losses)
    after = tuple(min(losses[n] for losses in per_set_losses) for n in range(nodes_tolerated + 1))
    largest = max(capacity.values())
    return CapacityReport(
        name=topology.name,
        version=topology.version,
        k=e.data_shards,
        m=e.parity_shards,
        codec=e.codec,
        node_count=len(topology.nodes),
        drive_count=len(capacity),
        pool_count=len(topology.pool_nodes()),
        sets=tuple(tuple(s) for s in sets),
        raw_bytes=sum(capacity.values()),
        usable_bytes=sum(e.data_shards * min(capacity[d] for d in s) for s in sets),
        drives_tolerated=e.parity_shards,
        nodes_tolerated=nodes_tolerated,
        drives_after_node_losses=after,
        max_shards_per_node=max(max(Counter(d.node for d in s).values()) for s in sets),
        largest_drive_bytes=largest,
        rebuild_rate_mb_s=rebuild_rate_mb_s,
        rebuild_s=rebuild_seconds(largest, rebuild_rate_mb_s),
        rebuild_read_bytes=e.data_shards * largest,
    )
