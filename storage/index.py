"""One drive's metadata index: SQLite in WAL mode, fsync'd, group-committed writes.

Writes are functions of a connection handed to ``Index.write``: one committer thread per drive
runs every write that is waiting in one transaction (each in its own savepoint, so one failing
write does not fail the others; writes that only touch the database run without one, and again
in savepoints if one of them fails) and fsyncs once for all of them; their waiters are woken
once per batch (storage.group_commit). Concurrent requests therefore
share fsyncs instead of queueing behind each other's. Reads use a second connection (WAL lets
them run beside the committer). Keys compare with SQLite's BINARY collation, i.e. UTF-8 byte
order, which is S3's order.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from storage.drive import ListRow, RowPage
from storage.errors import BucketExists, BucketNotEmpty, BucketNotFound, DriveNotFound
from storage.group_commit import Job, PendingWrite, settle
from storage.records import (
    BucketRecord,
    ObjectRecord,
    ObjectRow,
    PartRecord,
    UploadRecord,
    decode_object_meta,
    decode_upload_meta,
    encode_upload_meta,
    object_data_ids,
    object_row,
    object_values,
)

INDEX_FORMAT_VERSION = 1
# A listing row, and what a drive that sends only its page digest reads: enough to tell
# versions apart (page_digest) and to cut a full page after a whole key (Index._list_rows).
ROW_COLUMNS = ("key", "version_id", "mod_time_ns", "size", "etag")
DIGEST_COLUMNS = ROW_COLUMNS[:3]
MAX_BATCH = 256  # writes per group commit

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS buckets(
    name TEXT PRIMARY KEY, created_ns INTEGER NOT NULL, owner TEXT NOT NULL, region TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects(
    bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL,
    mod_time_ns INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    meta BLOB NOT NULL, inline BLOB,
    PRIMARY KEY(bucket, key, version_id)) WITHOUT ROWID;
-- Listing reads only this narrow index, already in listing order (no sort, no meta/inline).
CREATE INDEX IF NOT EXISTS objects_listing
    ON objects(bucket, key, mod_time_ns DESC, version_id DESC, size, etag);
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


_VERSIONS = (
    "SELECT version_id, mod_time_ns, meta, inline FROM objects"
    " WHERE bucket=? AND key=? ORDER BY mod_time_ns DESC, version_id DESC"
)
# The inline shard left unread (up to 1/k of the inline threshold per row): a HEAD's read.
_VERSIONS_WITHOUT_INLINE = _VERSIONS.replace(" inline FROM", " NULL FROM")


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


def page_digest(rows: Sequence[Sequence[str | int]]) -> str:
    """SHA-256 of a listing page's versions: the JSON (ASCII) of each row's key and version id,
    flattened. Rows are (key, version id, ...) in page order.

    A version id names one record: the same version carries the same mod time, size and ETag
    on every drive (records.py), and the exact merge (``storage.listing.merge_set_rows``) also
    tells versions apart by key and version id only. So equal digests mean equal pages (up to
    a SHA-256 collision; key names are chosen by clients, so no weaker hash), and a drive that
    only sends its digest reads and encodes two columns per row, not five.

    >>> page_digest([("a", "v1", 1, 0, "e")]) == page_digest([("a", "v1")])
    True
    >>> page_digest([("a", "v1")])[:16]
    '9746ca0b87d320fc'
    """
    text = json.dumps([f for row in rows for f in row[:2]], separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


class Index:
    def __init__(self, path: Path, before_commit: Callable[[], None] | None = None) -> None:
        """``before_commit`` runs in the committer before each group commit; what it raises
        fails every write of the batch (e.g. the drive folder vanished: nothing may commit)."""
        self.path = path
        self._before_commit = before_commit
        self._writer = _connect(path)
        self._writer.executescript(_SCHEMA)
        row = self._writer.execute("SELECT value FROM info WHERE name='format'").fetchone()
        if row is None:
            self._writer.execute(
                "INSERT INTO info(name, value) VALUES('format', ?)", (str(INDEX_FORMAT_VERSION),)
            )
        elif int(row[0]) != INDEX_FORMAT_VERSION:
            raise RuntimeError(f"{path}: index format {row[0]} is not {INDEX_FORMAT_VERSION}")
        self._synchronous = "FULL"  # as _connect left the writer
        self._reader = _connect(path)
        self._read_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Job[Any] | None] = queue.SimpleQueue()
        self._settle_lock = threading.Lock()
        self._committer = threading.Thread(
            target=self._commit_loop, name=f"commit-{path.parent.name}", daemon=True
        )
        self._committer.start()

    def close(self) -> None:
        self._jobs.put(None)
        self._committer.join()
        self._writer.close()
        with self._read_lock:
            self._reader.close()

    def write(
        self,
        fn: Callable[[sqlite3.Connection], _T],
        durable: bool = True,
        after: Callable[[_T], None] | None = None,
        replayable: bool = False,
    ) -> PendingWrite[_T]:
        """Queue ``fn`` for the next group commit; the write resolves once it is committed
        (fsync'd when ``durable``; non-durable writes are ordered before the next durable one,
        so a crash can only lose a suffix of them). ``replayable``: ``fn`` changes nothing
        but the database, so it may run again after a rollback (a batch of such writes
        runs without a savepoint each, and again in savepoints only when one fails)."""
        pending: PendingWrite[_T] = PendingWrite(self._settle_lock)
        self._jobs.put(Job(fn, durable, after, replayable, pending))
        return pending

    def _commit_loop(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[Job[Any]]) -> None:
        with self._settle_lock:
            live = [job for job in batch if job.pending.claim()]
        if not live:
            return
        db = self._writer
        outcomes: list[tuple[Job[Any], Any, BaseException | None]] | None
        try:
            if self._before_commit is not None:
                self._before_commit()
            synchronous = "FULL" if any(job.durable for job in live) else "NORMAL"
            if synchronous != self._synchronous:  # a statement per commit otherwise
                db.execute(f"PRAGMA synchronous={synchronous}")
                self._synchronous = synchronous
            db.execute("BEGIN IMMEDIATE")
            outcomes = None
            if len(live) == 1 or all(job.replayable for job in live):
                outcomes = self._run_plain(live)
            if outcomes is None:
                outcomes = self._run_in_savepoints(live)
            if db.in_transaction:
                db.execute("COMMIT")
        except Exception as exc:  # the commit itself failed: nothing of the batch is durable
            if db.in_transaction:
                db.execute("ROLLBACK")
            settle(self._settle_lock, [(job.pending, None, exc) for job in live])
            return
        for job, result, error in outcomes:
            if error is None and job.after is not None:
                try:
                    job.after(result)
                except Exception:  # post-commit cleanup (file unlinks) is best effort
                    log.warning("post-commit step failed on %s", self.path, exc_info=True)
        settle(self._settle_lock, [(job.pending, result, error) for job, result, error in outcomes])

    def _run_plain(
        self, live: list[Job[Any]]
    ) -> list[tuple[Job[Any], Any, BaseException | None]] | None:
        """Run a batch's jobs in its transaction as they are: two statements per job fewer
        than savepoints. A job that fails alone in its batch rolls the transaction back (its
        outcome); in a larger batch (replayable jobs only) the transaction starts over and
        None says: run them again, each in a savepoint."""
        db = self._writer
        outcomes: list[tuple[Job[Any], Any, BaseException | None]] = []
        for job in live:
            try:
                outcomes.append((job, job.fn(db), None))
            except Exception as exc:
                if db.in_transaction:  # (some SQLite errors roll back by themselves)
                    db.execute("ROLLBACK")
                if len(live) == 1:
                    return [(job, None, exc)]
                db.execute("BEGIN IMMEDIATE")
                return None
        return outcomes

    def _run_in_savepoints(
        self, live: list[Job[Any]]
    ) -> list[tuple[Job[Any], Any, BaseException | None]]:
        """Run each job in a savepoint of the batch's transaction: a failing job is rolled
        back alone, the others commit."""
        db = self._writer
        outcomes: list[tuple[Job[Any], Any, BaseException | None]] = []
        for job in live:
            db.execute("SAVEPOINT job")
            try:
                outcomes.append((job, job.fn(db), None))
                db.execute("RELEASE job")
            except Exception as exc:
                db.execute("ROLLBACK TO job")
                db.execute("RELEASE job")
                outcomes.append((job, None, exc))
        return outcomes

    # Buckets ---------------------------------------------------------------------------------

    def make_bucket(self, bucket: BucketRecord) -> PendingWrite[None]:
        def op(db: sqlite3.Connection) -> None:
            if _bucket_exists(db, bucket.name):
                raise BucketExists(bucket.name)
            db.execute(
                "INSERT INTO buckets VALUES(?,?,?,?)",
                (bucket.name, bucket.created_ns, bucket.owner, bucket.region),
            )

        return self.write(op, replayable=True)

    def get_bucket(self, name: str) -> BucketRecord:
        with self._read_lock:
            db = self._reader
            row = db.execute("SELECT * FROM buckets WHERE name=?", (name,)).fetchone()
        if row is None:
            raise DriveNotFound(name)
        return BucketRecord(*row)

    def list_buckets(self) -> list[BucketRecord]:
        with self._read_lock:
            db = self._reader
            rows = db.execute("SELECT * FROM buckets ORDER BY name").fetchall()
        return [BucketRecord(*r) for r in rows]

    def delete_bucket(self, name: str) -> PendingWrite[None]:
        def op(db: sqlite3.Connection) -> None:
            if not _bucket_exists(db, name):
                raise DriveNotFound(name)
            if db.execute("SELECT 1 FROM objects WHERE bucket=? LIMIT 1", (name,)).fetchone():
                raise BucketNotEmpty(name)
            if db.execute("SELECT 1 FROM uploads WHERE bucket=? LIMIT 1", (name,)).fetchone():
                raise BucketNotEmpty(name)
            db.execute("DELETE FROM buckets WHERE name=?", (name,))

        return self.write(op, replayable=True)

    # Objects ---------------------------------------------------------------------------------

    def insert_object(
        self,
        record: ObjectRecord,
        before: Callable[[], None] | None,
        after: Callable[[bool], None] | None,
    ) -> PendingWrite[bool]:
        """Insert a version. ``before`` runs inside the transaction first (publishing shard
        files; None: nothing to publish, e.g. a small object's inline shard); the result says
        whether older versions of the key remain (worth a prune)."""
        if before is None:
            return self.insert_row(object_row(record), after)

        def op(db: sqlite3.Connection) -> bool:
            before()
            return _insert_object(db, record)

        return self.write(op, after=after)

    def insert_row(
        self, row: ObjectRow, after: Callable[[bool], None] | None = None
    ) -> PendingWrite[bool]:
        """``insert_object`` of a version already in its row form (``records.object_row``),
        without shard files to publish."""
        return self.write(functools.partial(_insert_row, row=row), after=after, replayable=True)

    def insert_objects(self, records: list[ObjectRecord]) -> PendingWrite[None]:
        """Insert many versions of new keys in one transaction (bulk loading, e.g. seeding a
        benchmark bucket): the rows ``insert_object`` writes, without its per-key checks
        (older versions, shard files); every record's bucket must exist."""

        def op(db: sqlite3.Connection) -> None:
            for bucket in {r.bucket for r in records}:
                if not _bucket_exists(db, bucket):
                    raise BucketNotFound(bucket)
            db.executemany(
                "INSERT OR REPLACE INTO objects VALUES(?,?,?,?,?,?,?,?)",
                [object_row(r) for r in records],
            )

        return self.write(op, replayable=True)

    def get_versions(self, bucket: str, key: str, inline: bool = True) -> list[ObjectRecord]:
        rows = self._version_rows(bucket, key, inline)
        return [decode_object_meta(bucket, key, v, t, m, i) for v, t, m, i in rows]

    def get_version_values(self, bucket: str, key: str, inline: bool = True) -> list[list[Any]]:
        """``get_versions`` as lists of the records' field values (``records.object_values``)."""
        rows = self._version_rows(bucket, key, inline)
        return [object_values(bucket, key, v, t, m, i) for v, t, m, i in rows]

    def _version_rows(self, bucket: str, key: str, inline: bool) -> list[Any]:
        with self._read_lock:
            return self._reader.execute(
                _VERSIONS if inline else _VERSIONS_WITHOUT_INLINE, (bucket, key)
            ).fetchall()

    def prune_versions(
        self,
        bucket: str,
        key: str,
        before: tuple[int, str],
        durable: bool,
        unlink: Callable[[list[str]], None],
    ) -> PendingWrite[list[str]]:
        """Delete versions older than ``before``; ``unlink`` gets their data ids once committed."""
        t, v = before

        def op(db: sqlite3.Connection) -> list[str]:
            if not _bucket_exists(db, bucket):
                raise BucketNotFound(bucket)
            rows = db.execute(
                "SELECT version_id, mod_time_ns, meta FROM objects WHERE bucket=? AND key=?"
                " AND (mod_time_ns < ? OR (mod_time_ns = ? AND version_id < ?))",
                (bucket, key, t, t, v),
            ).fetchall()
            db.executemany(
                "DELETE FROM objects WHERE bucket=? AND key=? AND version_id=?",
                [(bucket, key, r[0]) for r in rows],
            )
            return [data_id for _, _, meta in rows for data_id in object_data_ids(meta)]

        return self.write(op, durable=durable, after=unlink, replayable=True)

    def delete_version(
        self, bucket: str, key: str, version_id: str, unlink: Callable[[list[str]], None]
    ) -> PendingWrite[list[str]]:
        def op(db: sqlite3.Connection) -> list[str]:
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
            return object_data_ids(row[1])

        return self.write(op, durable=False, after=unlink, replayable=True)

    def _list_rows(
        self,
        bucket: str,
        prefix: str,
        after: str,
        limit: int,
        columns: Sequence[str] = ROW_COLUMNS,
    ) -> list[tuple[Any, ...]]:
        """Rows of ``columns`` (ROW_COLUMNS or DIGEST_COLUMNS) in listing order, from the
        narrow ``objects_listing`` index."""
        lower = max(prefix, after)
        upper = prefix_end(prefix) if prefix else None
        op = ">" if after >= prefix and after else ">="
        select = ", ".join(columns)
        sql = f"SELECT {select} FROM objects WHERE bucket=? AND key {op} ?"
        args: list[object] = [bucket, lower]
        if upper is not None:
            sql += " AND key < ?"
            args.append(upper)
        sql += " ORDER BY key, mod_time_ns DESC, version_id DESC LIMIT ?"
        args.append(limit)
        with self._read_lock:
            db = self._reader
            found: list[tuple[Any, ...]] = db.execute(sql, args).fetchall()
            if len(found) == limit:
                # A full page ends with all versions of its last key: cut after the newest
                # ones, a merge would see only a partial write of that key and miss the
                # older version that is readable (the caller continues after that key).
                key, version_id, mod_time_ns = found[-1][:3]
                found += db.execute(
                    f"SELECT {select} FROM objects"
                    " WHERE bucket=? AND key=? AND (mod_time_ns < ?"
                    " OR (mod_time_ns = ? AND version_id < ?))"
                    " ORDER BY mod_time_ns DESC, version_id DESC",
                    (bucket, key, mod_time_ns, mod_time_ns, version_id),
                ).fetchall()
            return found

    def _skip_rows(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        after: str,
        limit: int,
        columns: Sequence[str] = ROW_COLUMNS,
    ) -> list[tuple[Any, ...]]:
        """The newest row of each of the first ``limit`` entries after ``after``: an entry is
        a key without ``delimiter`` after ``prefix``, or the first key of a common prefix,
        whose other keys are then skipped with one B-tree seek (no row of them is read).

        One recursive query walks the entries inside SQLite (about 5 us per seek here, where
        a query per entry from Python costs 20 us): each step seeks to the smallest key after
        the previous entry, i.e. >= the common prefix's upper bound (the key up to the
        delimiter + ``prefix_end(delimiter)``) or > the previous key. With prefix "" and "/",
        keys a/1 a/2 b c/1 give the entries a/1 (for "a/"), b, c/1 (for "c/").
        """
        lower = max(prefix, after)
        op = ">" if after >= prefix and after else ">="
        upper = prefix_end(prefix) if prefix else None
        below = " AND key < :upper" if upper is not None else ""
        # key >= bound AND key != k: "> k" for a plain key (k itself is skipped by the !=,
        # with its versions), ">= prefix_end(common prefix)" for a key under one.
        sql = f"""
            WITH RECURSIVE walk(k) AS (
                SELECT (SELECT key FROM objects WHERE bucket = :bucket AND key {op} :lower{below}
                        ORDER BY key LIMIT 1)
                UNION ALL
                SELECT (SELECT key FROM objects WHERE bucket = :bucket AND key >= (
                            CASE WHEN instr(substr(k, :skip), :delimiter) > 0
                            THEN substr(k, 1, :plen + instr(substr(k, :skip), :delimiter) - 1)
                                 || :next_delimiter
                            ELSE k END) AND key != k{below}
                        ORDER BY key LIMIT 1)
                FROM walk WHERE k IS NOT NULL
                LIMIT :limit)
            SELECT {", ".join("o." + c for c in columns)}
            FROM walk CROSS JOIN objects AS o ON o.bucket = :bucket AND o.key = walk.k
            ORDER BY o.key, o.mod_time_ns DESC, o.version_id DESC"""
        args = {
            "bucket": bucket,
            "lower": lower,
            "upper": upper,
            "skip": len(prefix) + 1,
            "plen": len(prefix),
            "delimiter": delimiter,
            "next_delimiter": prefix_end(delimiter),
            "limit": limit,
        }
        with self._read_lock:
            found = self._reader.execute(sql, args).fetchall()
        newest = []
        last = None
        for row in found:  # rows come newest first per key: keep the first of each
            if row[0] != last:
                newest.append(row)
                last = row[0]
        return newest

    def list_versions(self, bucket: str, prefix: str, after: str, limit: int) -> list[ListRow]:
        return [ListRow(*r) for r in self._list_rows(bucket, prefix, after, limit)]

    def list_page(
        self, bucket: str, prefix: str, after: str, limit: int, rows: bool, delimiter: str = ""
    ) -> RowPage:
        """``list_versions`` as a RowPage; with a ``delimiter``, a skip-scan page instead: one
        row per entry (``_skip_rows``). A delimiter of only U+10FFFF characters has no upper
        bound to seek to (``prefix_end``): the caller lists such a bucket flat. Without
        ``rows`` only the digest's columns are read."""
        columns = ROW_COLUMNS if rows else DIGEST_COLUMNS
        if delimiter:
            if prefix_end(delimiter) is None:
                raise ValueError("a skip-scan delimiter needs an upper bound (prefix_end)")
            found = self._skip_rows(bucket, prefix, delimiter, after, limit, columns)
        else:
            found = self._list_rows(bucket, prefix, after, limit, columns)
        return RowPage(
            digest=page_digest(found),
            count=len(found),
            last_key=found[-1][0] if found else None,
            fields=[f for r in found for f in r] if rows else None,
        )

    # Multipart -------------------------------------------------------------------------------

    def put_upload(self, upload: UploadRecord) -> PendingWrite[None]:
        def op(db: sqlite3.Connection) -> None:
            if not _bucket_exists(db, upload.bucket):
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

        return self.write(op, replayable=True)

    def get_upload(self, upload_id: str) -> UploadRecord:
        with self._read_lock:
            db = self._reader
            row = db.execute(
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
        with self._read_lock:
            db = self._reader
            rows = db.execute(sql, args).fetchall()
        return [decode_upload_meta(*r) for r in rows]

    def upsert_part(
        self, part: PartRecord, before: Callable[[], None], unlink: Callable[[list[str]], None]
    ) -> PendingWrite[list[str]]:
        """Insert or replace a part row; the replaced part's shard is unlinked once committed."""

        def op(db: sqlite3.Connection) -> list[str]:
            if not db.execute(
                "SELECT 1 FROM uploads WHERE upload_id=?", (part.upload_id,)
            ).fetchone():
                raise DriveNotFound(part.upload_id)
            before()
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
            return [str(old[0])] if old and old[0] != part.data_id else []

        return self.write(op, after=unlink)

    def list_parts(self, upload_id: str) -> list[PartRecord]:
        with self._read_lock:
            db = self._reader
            rows = db.execute(
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

    def complete_upload(
        self, record: ObjectRecord, upload_id: str, unlink: Callable[[list[str]], None]
    ) -> PendingWrite[bool]:
        """Insert the version and drop the upload; unused parts' shards are unlinked once
        committed. The result says whether older versions of the key remain."""
        used = {p.data_id for p in record.parts}
        unused: list[str] = []

        def op(db: sqlite3.Connection) -> bool:
            if not db.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload_id,)).fetchone():
                raise DriveNotFound(upload_id)
            rows = db.execute("SELECT data_id FROM parts WHERE upload_id=?", (upload_id,))
            unused[:] = [r[0] for r in rows if r[0] not in used]
            older = _insert_object(db, record)
            db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
            db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
            return older

        return self.write(op, after=lambda _: unlink(unused), replayable=True)

    def abort_upload(
        self, upload_id: str, unlink: Callable[[list[str]], None]
    ) -> PendingWrite[list[str]]:
        def op(db: sqlite3.Connection) -> list[str]:
            if not db.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload_id,)).fetchone():
                raise DriveNotFound(upload_id)
            rows = db.execute("SELECT data_id FROM parts WHERE upload_id=?", (upload_id,))
            data_ids = [r[0] for r in rows]
            db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
            db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
            return data_ids

        return self.write(op, after=unlink, replayable=True)

    def referenced_data_ids(self) -> set[str]:
        """Every data id an index row points at (for an orphan sweep)."""
        with self._read_lock:
            db = self._reader
            ids = {r[0] for r in db.execute("SELECT data_id FROM parts")}
            for bucket, key, v, t, meta in db.execute(
                "SELECT bucket, key, version_id, mod_time_ns, meta FROM objects"
            ):
                ids.update(
                    p.data_id
                    for p in decode_object_meta(bucket, key, v, t, meta, None).parts
                    if p.data_id
                )
        return ids


def _bucket_exists(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM buckets WHERE name=?", (name,)).fetchone() is not None


def _insert_object(db: sqlite3.Connection, record: ObjectRecord) -> bool:
    """Insert a version; True when older versions of the key remain on this drive."""
    return _insert_row(db, object_row(record))


def _insert_row(db: sqlite3.Connection, row: ObjectRow) -> bool:
    """Insert a version's row; True when older versions of the key remain on this drive (the
    insert adds or replaces this version only: the others are there before it as after)."""
    bucket_found, others = db.execute(
        "SELECT EXISTS(SELECT 1 FROM buckets WHERE name=?),"
        " EXISTS(SELECT 1 FROM objects WHERE bucket=? AND key=? AND version_id != ?)",
        (row.bucket, row.bucket, row.key, row.version_id),
    ).fetchone()
    if not bucket_found:
        raise BucketNotFound(row.bucket)
    db.execute("INSERT OR REPLACE INTO objects VALUES(?,?,?,?,?,?,?,?)", row)
    return bool(others)
