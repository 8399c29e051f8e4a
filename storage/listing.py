"""Listing: sorted range scans of every drive's index, merged per set and across sets.

Per set, a key is listed when its newest version is held by at least k drives (the same rule as
reads), so a half-written or half-deleted key never shows. Keys under a common prefix are skipped
with a seek instead of being scanned one by one.

A batch is fetched as one drive's rows plus every other drive's page digest: when all answering
drives hold the same page (the normal case), the rows of one drive decide the batch (see
``agreed_rows``); only when they differ are all drives' rows fetched and merged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from storage.api import ListedObject, ListPage, ns_to_datetime
from storage.drive import Drive, ListRow, RowPage
from storage.errors import QuorumNotReached
from storage.sets import ErasureSets, each

# Seeking past "photos/" lists keys after "photos/" + this: later than any real key under it.
_AFTER_ALL = "\U0010ffff" * 4


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    """The CommonPrefixes entry a key rolls up into, if any.

    >>> common_prefix("a/b/c.txt", "a/", "/")
    'a/b/'
    >>> common_prefix("a/c.txt", "a/", "/") is None
    True
    """
    if not delimiter:
        return None
    i = key.find(delimiter, len(prefix))
    return key[: i + len(delimiter)] if i >= 0 else None


def merge_set_rows(
    per_drive: Sequence[list[ListRow] | None], k: int, horizon: str | None
) -> list[ListRow]:
    """Readable newest version of every key up to ``horizon`` (None: no limit), in key order.

    The same rule as ``quorum.pick_readable`` (newest version held by >= k drives; a key whose
    newest version could still reach k on silent drives is skipped as undecidable), counted in
    one pass over the rows: a 1000-key page from 12 drives is 12,000 rows per page.

    >>> a1, b1 = ListRow("a", "1", 1, 0, ""), ListRow("b", "1", 1, 0, "")
    >>> [r.key for r in merge_set_rows([[a1, b1], [a1], [a1, b1]], 2, None)]
    ['a', 'b']
    >>> [r.key for r in merge_set_rows([[a1, b1], [a1], [a1]], 2, None)]
    ['a']
    """
    missing = sum(1 for rows in per_drive if rows is None)
    by_key: dict[str, dict[str, list[Any]]] = {}  # key -> version -> [drives holding it, row]
    for rows in per_drive:
        for row in rows or ():
            if horizon is not None and row.key > horizon:
                break
            versions = by_key.get(row.key)
            if versions is None:
                by_key[row.key] = {row.version_id: [1, row]}
            elif (entry := versions.get(row.version_id)) is None:
                versions[row.version_id] = [1, row]
            else:
                entry[0] += 1
    out = []
    for key in sorted(by_key):
        versions = by_key[key]
        if len(versions) == 1:
            ((held, row),) = versions.values()
            if held >= k:
                out.append(row)
            continue
        for held, row in sorted(versions.values(), key=lambda e: e[1].order, reverse=True):
            if held >= k:
                out.append(row)
                break
            if held + missing >= k:
                break  # a newer version may exist on silent drives: undecidable, not listed
    return out


def agreed_rows(pages: Sequence[RowPage | None], reader: int, k: int) -> list[ListRow] | None:
    """The batch ``merge_set_rows`` would return, from one drive's rows, when every answering
    drive holds the same page; None when they differ (or the reader did not answer).

    ``pages[i]`` is drive i's page (None: no answer); ``pages[reader]`` carries the rows.
    Equivalence with ``merge_set_rows`` over the same pages: let A be the answering drives,
    |A| >= k, all with page P (equal SHA-256 digests of the canonical encoding). Every version
    in P is then held by |A| >= k drives, so for every key its newest version is readable and
    is the one listed (nothing is undecidable). Either every page in A is full (horizon = the
    last key of P, which bounds every row of P, P being sorted) or none is (no horizon). So
    the merge yields the first row of each key of P, P being sorted by key then newest first:
    exactly what is returned here.

    >>> from storage.index import page_digest
    >>> f = ["a", "v2", 2, 1, "e", "a", "v1", 1, 1, "e", "b", "v1", 1, 1, "e"]
    >>> full = RowPage(page_digest(f), 3, "b", f)
    >>> digest_only = RowPage(full.digest, 3, "b", None)
    >>> [(r.key, r.version_id) for r in agreed_rows([full, digest_only, None], 0, 2) or []]
    [('a', 'v2'), ('b', 'v1')]
    >>> agreed_rows([full, RowPage("other", 3, "b", None)], 0, 2) is None
    True
    """
    mine = pages[reader]
    if mine is None or mine.fields is None:
        return None
    answered = [p for p in pages if p is not None]
    if len(answered) < k or any(p.digest != mine.digest for p in answered):
        return None
    f = mine.fields
    out: list[ListRow] = []
    last = None
    for i in range(0, len(f), 5):
        key = f[i]
        if key != last:
            out.append(ListRow(*f[i : i + 5]))  # type: ignore[arg-type]
            last = key
    return out


class SetCursor:
    """Readable rows of one erasure set in key order, fetched in batches.

    ``reader`` (shared across requests, one cell per set) is the drive asked for rows; the
    others send digests. It moves to another drive when the reader does not answer.
    """

    def __init__(
        self,
        drives: Sequence[Drive],
        k: int,
        bucket: str,
        prefix: str,
        after: str,
        batch: int,
        reader: list[int] | None = None,
    ) -> None:
        self.drives = drives
        self.k = k
        self.bucket = bucket
        self.prefix = prefix
        self.after = after
        self.batch = batch
        self.reader = reader if reader is not None else [0]
        self.buffer: deque[ListRow] = deque()
        self.exhausted = False

    async def peek(self) -> ListRow | None:
        while not self.buffer and not self.exhausted:
            await self._fill()
        return self.buffer[0] if self.buffer else None

    def pop(self) -> ListRow:
        return self.buffer.popleft()

    def seek_past(self, prefix: str) -> None:
        """Skip every key starting with ``prefix``."""
        while self.buffer and self.buffer[0].key.startswith(prefix):
            self.buffer.popleft()
        if not self.buffer and self.after < prefix + _AFTER_ALL:
            self.after = prefix + _AFTER_ALL

    async def _fill(self) -> None:
        after = self.after
        reader = self.reader[0] % len(self.drives)
        reading = self.drives[reader]
        results = await each(
            self.drives,
            lambda d: d.list_page(self.bucket, self.prefix, after, self.batch, rows=d is reading),
        )
        pages = [r if isinstance(r, RowPage) else None for r in results]
        answered = [p for p in pages if p is not None]
        if len(answered) < self.k:
            raise QuorumNotReached(f"{len(answered)} drives answered a listing, {self.k} needed")
        if pages[reader] is None:  # ask one that answered next time
            self.reader[0] = next(i for i, p in enumerate(pages) if p is not None)
        rows = agreed_rows(pages, reader, self.k)
        if rows is not None:
            last = answered[0].last_key
            horizon = last if answered[0].count >= self.batch else None
        else:  # the drives differ: merge every drive's rows
            lists = await each(
                self.drives, lambda d: d.list_versions(self.bucket, self.prefix, after, self.batch)
            )
            per_drive = [r if isinstance(r, list) else None for r in lists]
            full_pages = [r for r in per_drive if r is not None]
            if len(full_pages) < self.k:
                raise QuorumNotReached(
                    f"{len(full_pages)} drives answered a listing, {self.k} needed"
                )
            # Only keys up to the smallest last key of a full page are known on every drive.
            full = [r[-1].key for r in full_pages if len(r) >= self.batch]
            horizon = min(full) if full else None
            rows = merge_set_rows(per_drive, self.k, horizon)
        self.buffer.extend(rows)
        if horizon is None:
            self.exhausted = True
        else:
            self.after = horizon


class ErasureListing:
    def __init__(self, sets: ErasureSets) -> None:
        self.sets = sets
        self.readers = [[0] for _ in sets.sets]  # per set: the drive asked for rows

    async def list_objects(
        self, bucket: str, prefix: str, delimiter: str, after: str, max_keys: int
    ) -> ListPage:
        if after and common_prefix(after, prefix, delimiter) == after:
            after += _AFTER_ALL  # continuing after a common prefix: skip everything under it
        batch = min(max(max_keys + 1, 100), 1000)
        k = self.sets.params.k
        cursors = [
            SetCursor(s, k, bucket, prefix, after, batch, reader)
            for s, reader in zip(self.sets.sets, self.readers, strict=True)
        ]
        objects: list[ListedObject] = []
        prefixes: list[str] = []
        last: str | None = None
        truncated = False
        while True:
            heads = [(row.key, i) for i, c in enumerate(cursors) if (row := await c.peek())]
            if not heads:
                break
            if len(objects) + len(prefixes) >= max_keys:
                # max-keys=0 asks for an empty page, not truncated and without a marker (S3).
                truncated = max_keys > 0
                break
            key, i = min(heads)
            row = cursors[i].pop()
            cp = common_prefix(key, prefix, delimiter)
            if cp is not None:
                if not prefixes or prefixes[-1] != cp:
                    prefixes.append(cp)
                for c in cursors:
                    c.seek_past(cp)
                last = cp
                continue
            objects.append(
                ListedObject(
                    key=row.key,
                    size=row.size,
                    etag=row.etag,
                    last_modified=ns_to_datetime(row.mod_time_ns),
                )
            )
            last = row.key
        if not objects and not prefixes:
            from storage.buckets import ErasureBuckets

            await ErasureBuckets(self.sets).head_bucket(bucket)
        return ListPage(
            objects=objects,
            common_prefixes=prefixes,
            is_truncated=truncated,
            next_marker=last if truncated else None,
        )
