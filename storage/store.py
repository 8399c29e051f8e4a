"""Composition of the object layer over a list of drives."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from storage.api import Storage
from storage.buckets import ErasureBuckets
from storage.drive import Drive
from storage.listing import ErasureListing
from storage.local_drive import LocalDrive
from storage.multipart import ErasureMultipart
from storage.objects import ErasureObjects
from storage.offline_drive import OfflineDrive
from storage.sets import ECParams, ErasureSets

log = logging.getLogger(__name__)


def build_storage(
    deployment_id: str, drives: list[Drive], params: ECParams, min_part_size: int
) -> Storage:
    return storage_over(ErasureSets(deployment_id, drives, params), min_part_size)


def storage_over(
    sets: ErasureSets, min_part_size: int, missed: Callable[[str, str], None] | None = None
) -> Storage:
    objects = ErasureObjects(sets, missed=missed)
    return Storage(
        buckets=ErasureBuckets(sets),
        objects=objects,
        listing=ErasureListing(sets),
        multipart=ErasureMultipart(objects, min_part_size=min_part_size),
    )


class LayoutMismatch(Exception):
    """The data folder was created with another drive count or erasure-set size."""


def deployment_id(data_dir: Path, drives: int, set_size: int) -> str:
    """The deployment's id (placement hash key), created once and kept in DATA_DIR.

    The drive count and set size are recorded with it: placement depends on both, so starting
    on the same data with other values would make existing objects unreachable.
    """
    path = data_dir / "deployment.json"
    if path.exists():
        doc = json.loads(path.read_text())
        if (doc["drives"], doc["set_size"]) != (drives, set_size):
            raise LayoutMismatch(
                f"{data_dir} holds {doc['drives']} drives in sets of {doc['set_size']}; "
                f"refusing to start with {drives} drives in sets of {set_size}"
            )
        return str(doc["deployment_id"])
    data_dir.mkdir(parents=True, exist_ok=True)
    ident = uuid.uuid4().hex
    doc = {"deployment_id": ident, "drives": drives, "set_size": set_size}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)
    return ident


@dataclass
class LocalDrives:
    drives: list[LocalDrive | OfflineDrive]
    executor: ThreadPoolExecutor

    def close(self) -> None:
        for d in self.drives:
            d.close()
        self.executor.shutdown(wait=True)


def open_local_drives(data_dir: Path, count: int, io_threads: int) -> LocalDrives:
    """The embedded layout: DATA_DIR/drive-01 .. drive-NN, one folder per drive."""
    executor = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="drive-io")
    drives = [open_drive(data_dir / f"drive-{i:02d}", executor) for i in range(1, count + 1)]
    return LocalDrives(drives=drives, executor=executor)


def open_drive(root: Path, executor: ThreadPoolExecutor) -> LocalDrive | OfflineDrive:
    """A local drive, or an offline stand-in when its folder cannot be opened (the sets'
    quorum decides whether the process can still serve)."""
    try:
        return LocalDrive(root, executor)
    except (OSError, RuntimeError, ValueError, sqlite3.Error) as exc:
        log.error("drive %s is offline: %s", root, exc)
        return OfflineDrive(root.name, str(exc))
