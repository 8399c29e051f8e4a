"""Composition of the object layer over a list of drives."""

from __future__ import annotations

import json
import uuid
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
from storage.sets import ECParams, ErasureSets


def build_storage(
    deployment_id: str, drives: list[Drive], params: ECParams, min_part_size: int
) -> Storage:
    sets = ErasureSets(deployment_id, drives, params)
    objects = ErasureObjects(sets)
    return Storage(
        buckets=ErasureBuckets(sets),
        objects=objects,
        listing=ErasureListing(sets),
        multipart=ErasureMultipart(objects, min_part_size=min_part_size),
    )


def deployment_id(data_dir: Path) -> str:
    """The deployment's id (placement hash key), created once and kept in DATA_DIR."""
    path = data_dir / "deployment.json"
    if path.exists():
        return str(json.loads(path.read_text())["deployment_id"])
    data_dir.mkdir(parents=True, exist_ok=True)
    ident = uuid.uuid4().hex
    path.write_text(json.dumps({"deployment_id": ident}))
    return ident


@dataclass
class LocalDrives:
    drives: list[LocalDrive]
    executor: ThreadPoolExecutor

    def close(self) -> None:
        for d in self.drives:
            d.close()
        self.executor.shutdown(wait=True)


def open_local_drives(data_dir: Path, count: int, io_threads: int) -> LocalDrives:
    """The embedded layout: DATA_DIR/drive-01 .. drive-NN, one folder per drive."""
    executor = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="drive-io")
    drives = [LocalDrive(data_dir / f"drive-{i:02d}", executor) for i in range(1, count + 1)]
    return LocalDrives(drives=drives, executor=executor)
