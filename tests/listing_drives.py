"""Drives that are only their SQLite index, for listing tests (storage/listing.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from storage.drive import ListRow, RowPage
from storage.errors import DriveError
from storage.index import Index
from storage.records import BucketRecord

TIMES = {"v1": 1, "v2": 2, "v3": 3}  # version id -> mod time: newer ids are newer


class IndexDrive:
    """A drive that is only its index (all listing reads); ``down`` makes it not answer."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.down = False
        self.calls: Counter[str] = Counter()

    def _call(self, name: str) -> None:
        if self.down:
            raise DriveError("down")
        self.calls[name] += 1

    async def list_page(
        self, bucket: str, prefix: str, after: str, limit: int, rows: bool, delimiter: str = ""
    ) -> RowPage:
        self._call("list_page (rows)" if rows else "list_page")
        return self.index.list_page(bucket, prefix, after, limit, rows, delimiter)

    async def list_versions(
        self, bucket: str, prefix: str, after: str, limit: int
    ) -> list[ListRow]:
        self._call("list_versions")
        return self.index.list_versions(bucket, prefix, after, limit)

    async def get_bucket(self, name: str) -> BucketRecord:
        self._call("get_bucket")
        return self.index.get_bucket(name)


def load(drive: IndexDrive, rows: list[tuple[str, str]]) -> None:
    """Replace the drive's rows with these (key, version id) rows."""

    def op(db: Any) -> None:
        db.execute("DELETE FROM objects")
        db.executemany(
            "INSERT INTO objects VALUES('b',?,?,?,1,?,x'',NULL)",
            [(key, v, TIMES[v], f"{key}@{v}") for key, v in rows],
        )

    drive.index.write(op, durable=False).result()
