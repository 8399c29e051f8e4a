"""One drive's metadata index: SQLite in WAL mode, fsync'd commits.

Synchronous and single-connection; the local drive serialises access with a lock and runs it in
threads. Keys compare with SQLite's BINARY collation, i.e. UTF-8 byte order, which is S3's order.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.drive import ListRow
from storage.errors import BucketExists, BucketNotEmpty, BucketNotFound, DriveNotFound
from storage.records import (
    BucketRecord,
    ObjectRecord,
    PartRecord,
    UploadRecord,
    decode_object_meta,
    decode_upload_meta,
    encode_object_meta,
    encode_upload_meta,
)

INDEX_FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS buckets(
    name TEXT PRIMARY KEY, created_ns INTEGER NOT NULL, owner TEXT NOT NULL, region TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects(
    bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL,
    mod_time_ns INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    meta BLOB NOT NULL, inline BLOB,
    PRIMARY KEY(bucket, key, version_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads(
    upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL,
    initiated_ns INTEGER NOT NULL, meta BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads(bucket, key, upload_id);
CREATE TABLE IF NOT EXISTS parts(
    upload_id TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    data_id TEXT NOT NULL, mod_time_ns INTEGER NOT NULL, shard_index INTEGER NOT NULL,
    checksums TEXT NOT NULL,
    PRIMARY KEY(upload_id, number)) WITHOUT ROWID;
"""


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no bound).

    >>> prefix_end("photos/")
    'photos0'
    """
    chars = list(prefix)
    while chars:
        last = ord(chars[-1])
        if last < 0x10FFFF:
            chars[-1] = chr(last + 1)
            return "".join(chars)
        chars.pop()
    return None


class Index:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM info WHERE name='format'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO info(name, value) VALUES('format', ?)", (str(INDEX_FORMAT_VERSION),)
            )
        elif int(row[0]) != INDEX_FORMAT_VERSION:
            raise RuntimeError(f"{path}: index format {row[0]} is not {INDEX_FORMAT_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction. Non-durable ones skip the fsync: in WAL mode they are ordered
        before the next durable commit, so a crash can only lose a suffix of them."""
        with self._lock:
            if not durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    # Buckets ---------------------------------------------------------------------------------

    def make_bucket(self, bucket: BucketRecord) -> None:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM buckets WHERE name=?", (bucket.name,)).fetchone():
                raise BucketExists(bucket.name)
            db.execute(
                "INSERT INTO buckets VALUES(?,?,?,?)",
                (bucket.name, bucket.created_ns, bucket.owner, bucket.region),
            )

    def get_bucket(self, name: str) -> BucketRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM buckets WHERE name=?", (name,)).fetchone()
        if row is None:
            raise DriveNotFound(name)
        return BucketRecord(*row)

    def list_buckets(self) -> list[BucketRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM buckets ORDER BY name").fetchall()
        return [BucketRecord(*r) for r in rows]

    def delete_bucket(self, name: str) -> None:
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM buckets WHERE name=?", (name,)).fetchone():
                raise DriveNotFound(name)
            if db.execute("SELECT 1 FROM objects WHERE bucket=? LIMIT 1", (name,)).fetchone():
                raise BucketNotEmpty(name)
            if db.execute("SELECT 1 FROM uploads WHERE bucket=? LIMIT 1", (name,)).fetchone():
                raise BucketNotEmpty(name)
            db.execute("DELETE FROM buckets WHERE name=?", (name,))

    # Objects ---------------------------------------------------------------------------------

    def insert_object(self, record: ObjectRecord) -> None:
        with self._tx() as db:
            self._insert_object(db, record)

    def _insert_object(self, db: sqlite3.Connection, record: ObjectRecord) -> None:
        if not db.execute("SELECT 1 FROM buckets WHERE name=?", (record.bucket,)).fetchone():
            raise BucketNotFound(record.bucket)
        db.execute(
            "INSERT OR REPLACE INTO objects VALUES(?,?,?,?,?,?,?,?)",
            (
                record.bucket,
                record.key,
                record.version_id,
                record.mod_time_ns,
                record.size,
                record.etag,
                encode_object_meta(record),
                record.inline,
            ),
        )

    def get_versions(self, bucket: str, key: str) -> list[ObjectRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT version_id, mod_time_ns, meta, inline FROM objects"
                " WHERE bucket=? AND key=? ORDER BY mod_time_ns DESC, version_id DESC",
                (bucket, key),
            ).fetchall()
        return [decode_object_meta(bucket, key, v, t, m, i) for v, t, m, i in rows]

    def prune_versions(
        self, bucket: str, key: str, before: tuple[int, str], durable: bool
    ) -> list[str]:
        """Delete older versions; returns the data ids they referenced (to unlink after commit)."""
        t, v = before
        with self._tx(durable) as db:
            if not db.execute("SELECT 1 FROM buckets WHERE name=?", (bucket,)).fetchone():
                raise BucketNotFound(bucket)
            rows = db.execute(
                "SELECT version_id, mod_time_ns, meta FROM objects WHERE bucket=? AND key=?"
                " AND (mod_time_ns < ? OR (mod_time_ns = ? AND version_id < ?))",
                (bucket, key, t, t, v),
            ).fetchall()
            data_ids = [
                p.data_id
                for version_id, mod_ns, meta in rows
                for p in decode_object_meta(bucket, key, version_id, mod_ns, meta, None).parts
                if p.data_id
            ]
            db.executemany(
                "DELETE FROM objects WHERE bucket=? AND key=? AND version_id=?",
                [(bucket, key, r[0]) for r in rows],
            )
        return data_ids

    def delete_version(self, bucket: str, key: str, version_id: str) -> list[str]:
        with self._tx(durable=False) as db:
            row = db.execute(
                "SELECT mod_time_ns, meta FROM objects WHERE bucket=? AND key=? AND version_id=?",
                (bucket, key, version_id),
            ).fetchone()
            if row is None:
                return []
            db.execute(
                "DELETE FROM objects WHERE bucket=? AND key=? AND version_id=?",
                (bucket, key, version_id),
            )
        record = decode_object_meta(bucket, key, version_id, row[0], row[1], None)
        return [p.data_id for p in record.parts if p.data_id]

    def list_versions(self, bucket: str, prefix: str, after: str, limit: int) -> list[ListRow]:
        lower = max(prefix, after)
        upper = prefix_end(prefix) if prefix else None
        op = ">" if after >= prefix and after else ">="
        sql = (
            f"SELECT key, version_id, mod_time_ns, size, etag FROM objects"
            f" WHERE bucket=? AND key {op} ?"
        )
        args: list[object] = [bucket, lower]
        if upper is not None:
            sql += " AND key < ?"
            args.append(upper)
        sql += " ORDER BY key, mod_time_ns DESC, version_id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [ListRow(*r) for r in rows]

    # Multipart -------------------------------------------------------------------------------

    def put_upload(self, upload: UploadRecord) -> None:
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM buckets WHERE name=?", (upload.bucket,)).fetchone():
                raise BucketNotFound(upload.bucket)
            db.execute(
                "INSERT INTO uploads VALUES(?,?,?,?,?)",
                (
                    upload.upload_id,
                    upload.bucket,
                    upload.key,
                    upload.initiated_ns,
                    encode_upload_meta(upload),
                ),
            )

    def get_upload(self, upload_id: str) -> UploadRecord:
        with self._lock:
            row = self._db.execute(
                "SELECT bucket, key, upload_id, initiated_ns, meta FROM uploads WHERE upload_id=?",
                (upload_id,),
            ).fetchone()
        if row is None:
            raise DriveNotFound(upload_id)
        return decode_upload_meta(*row)

    def list_uploads(
        self, bucket: str, prefix: str, after: tuple[str, str], limit: int
    ) -> list[UploadRecord]:
        after_key, after_id = after
        sql = (
            "SELECT bucket, key, upload_id, initiated_ns, meta FROM uploads"
            " WHERE bucket=? AND (key > ? OR (key = ? AND upload_id > ?))"
        )
        args: list[object] = [bucket, after_key, after_key, after_id]
        if prefix:
            sql += " AND key >= ?"
            args.append(prefix)
            upper = prefix_end(prefix)
            if upper is not None:
                sql += " AND key < ?"
                args.append(upper)
        sql += " ORDER BY key, upload_id LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [decode_upload_meta(*r) for r in rows]

    def upsert_part(self, part: PartRecord) -> str | None:
        """Insert or replace a part row; returns the data id of the replaced part, if any."""
        with self._tx() as db:
            if not db.execute(
                "SELECT 1 FROM uploads WHERE upload_id=?", (part.upload_id,)
            ).fetchone():
                raise DriveNotFound(part.upload_id)
            old = db.execute(
                "SELECT data_id FROM parts WHERE upload_id=? AND number=?",
                (part.upload_id, part.number),
            ).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO parts VALUES(?,?,?,?,?,?,?,?)",
                (
                    part.upload_id,
                    part.number,
                    part.size,
                    part.etag,
                    part.data_id,
                    part.mod_time_ns,
                    part.shard_index,
                    json.dumps(part.checksums),
                ),
            )
        return str(old[0]) if old and old[0] != part.data_id else None

    def list_parts(self, upload_id: str) -> list[PartRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT upload_id, number, size, etag, data_id, mod_time_ns, shard_index, checksums"
                " FROM parts WHERE upload_id=? ORDER BY number",
                (upload_id,),
            ).fetchall()
        return [
            PartRecord(
                upload_id=u,
                number=n,
                size=z,
                etag=e,
                data_id=d,
                mod_time_ns=t,
                shard_index=i,
                checksums=json.loads(c),
            )
            for u, n, z, e, d, t, i, c in rows
        ]

    def complete_upload(self, record: ObjectRecord, upload_id: str) -> list[str]:
        """Insert the version and drop the upload; returns data ids of parts not used."""
        used = {p.data_id for p in record.parts}
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload_id,)).fetchone():
                raise DriveNotFound(upload_id)
            rows = db.execute(
                "SELECT data_id FROM parts WHERE upload_id=?", (upload_id,)
            ).fetchall()
            self._insert_object(db, record)
            db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
            db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
        return [r[0] for r in rows if r[0] not in used]

    def abort_upload(self, upload_id: str) -> list[str]:
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload_id,)).fetchone():
                raise DriveNotFound(upload_id)
            rows = db.execute(
                "SELECT data_id FROM parts WHERE upload_id=?", (upload_id,)
            ).fetchall()
            db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
            db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
        return [r[0] for r in rows]

    def referenced_data_ids(self) -> set[str]:
        """Every data id an index row points at (for the orphan sweep at start-up)."""
        with self._lock:
            ids = {r[0] for r in self._db.execute("SELECT data_id FROM parts")}
            for bucket, key, v, t, meta in self._db.execute(
                "SELECT bucket, key, version_id, mod_time_ns, meta FROM objects"
            ):
                ids.update(
                    p.data_id
                    for p in decode_object_meta(bucket, key, v, t, meta, None).parts
                    if p.data_id
                )
        return ids
