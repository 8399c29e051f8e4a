"""Listing: sorted range scans of every drive's index, merged per set and across sets.

Per set, a key is listed when its newest version is held by at least k drives (the same rule as
reads), so a half-written or half-deleted key never shows; a common prefix is listed when at
least one key under it is.

A batch is fetched as one drive's rows plus every other drive's page digest: when all answering
drives hold the same page (the normal case), the rows of one drive decide the batch (see
``agreed_rows``); only when they differ are all drives' rows fetched and merged.

With a delimiter, each drive skip-scans (``Index._skip_rows``): a page is up to ``batch``
entries, a common prefix being one entry (the newest row of its first key) whose other keys the
drive seeks past, so a page of 1000 common prefixes is one batch, not 1000 x 100 keys. When the
drives' skip-scanned pages differ, the entries they agree on up to the first difference are
taken (``agreed_prefix``) and the rest falls back to the exact per-key merge of one batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from storage.api import ListedObject, ListPage
from storage.drive import Drive, ListRow, RowPage
from storage.errors import QuorumNotReached
from storage.index import prefix_end
from storage.quorum import reads_from_k
from storage.sets import ErasureSets, each

MAX_BATCH = 1001  # entries per drive call: S3's largest page (max-keys 1000) and one more

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


def batch_size(max_keys: int) -> int:
    """Entries per drive call for a page of ``max_keys``: one more than the page, so that a
    full page and whether it is truncated come from one fill of each set (a batch of exactly
    ``max_keys`` made every full page a second round of drive calls, for one entry). At
    least 100, so that small pages still read ahead; at most S3's largest page (1000) + 1,
    which bounds a drive's answer.

    >>> batch_size(1000), batch_size(150), batch_size(1), batch_size(5000)
    (1001, 151, 100, 1001)
    """
    return min(max(max_keys + 1, 100), MAX_BATCH)


def skips_on_drive(delimiter: str) -> bool:
    """Whether the drives can skip-scan common prefixes of ``delimiter`` (one that is only
    U+10FFFF characters has no upper bound to seek to; such listings are merged flat).

    >>> skips_on_drive("/"), skips_on_drive(""), skips_on_drive("\U0010ffff")
    (True, False, False)
    """
    return bool(delimiter) and prefix_end(delimiter) is not None


def agreed_rows(pages: Sequence[RowPage | None], reader: int, k: int) -> list[ListRow] | None:
    """The batch ``merge_set_rows`` would return, from one drive's rows, when every answering
    drive holds the same page; None when they differ (or the reader did not answer).

    ``pages[i]`` is drive i's page (None: no answer); ``pages[reader]`` carries the rows.
    Equivalence with ``merge_set_rows`` over the same pages: let A be the answering drives,
    |A| >= k, all with page P (equal digests: the same versions in the same order, a version
    being the same record on every drive, see ``page_digest``). Every version in P is then
    held by |A| >= k drives, so for every key its newest version is readable and is the one
    listed (nothing is undecidable). Either every page in A is full (horizon = the last key
    of P, which bounds every row of P, P being sorted) or none is (no horizon). So
    the merge yields the first row of each key of P, P being sorted by key then newest first:
    exactly what is returned here.

    Only k drives asked (the others None), when k > m (reads_from_k): the full merge over
    every drive lists the same. Every version in P is held by the k asked drives, so it is
    readable. A version held by >= k drives in all (any readable one) is held by at least one
    asked drive (k + k > k + m), hence by all of them (equal pages), hence in P: no readable
    version, and no newer readable version of a key of P, is missing from P. A version not in
    P is held by at most m < k drives in all, so it is never undecidable either.

    Skip-scanned pages (with a delimiter) agree in the same sense; ``agreed_prefix`` proves
    that the listing they yield is the full merge's, for this and for any common head.

    >>> from storage.index import page_digest
    >>> rows = [("a", "v2", 2, 1, "e"), ("a", "v1", 1, 1, "e"), ("b", "v1", 1, 1, "e")]
    >>> full = RowPage(page_digest(rows), 3, "b", [f for row in rows for f in row])
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
    out: list[ListRow] = []
    for row in mine.rows():  # newest first per key: keep the first row of each
        if not out or out[-1].key != row.key:
            out.append(row)
    return out


def agreed_prefix(pages: Sequence[RowPage | None], k: int) -> list[ListRow]:
    """The leading entries on which every answering drive's skip-scanned page agrees, when at
    least k answered with rows (pages from ``list_page(..., delimiter)``, rows of all drives).

    Why listing these is what the full per-key merge lists over the same range. Each page is a
    drive's contiguous walk from the same ``after``: entry i+1 is the first key past entry i
    (past a key, or past the whole common prefix of a key under one), one row per entry, the
    key's newest version. Let A be the answering drives, |A| >= k, whose first j entries
    E1..Ej are equal, and R the keys from ``after`` to the end of Ej (all of Ej's common
    prefix if it is one). On every drive of A, the keys in R are then exactly the plain keys
    among E1..Ej plus keys under the common prefixes among them, because each drive's walk
    went from one entry straight to the next. So, over R:
    - a plain key is held by a drive of A iff it is an entry; its newest version on every
      drive of A is the entry's row, held by |A| >= k drives and newer than any other version
      seen: the merge lists that row (nothing is undecidable, no older version is reached);
    - a common prefix C of an entry: its first key has the same newest version on all of A,
      so that key is readable and C is listed; no other common prefix has a key in R.
    Hence the merge's listing of R (keys, and common prefixes rolled up) is these entries
    rolled up. ``agreed_rows`` over equal skip-scanned pages is the case j = all entries.
    The drives that did not answer are silent to the merge too, so up to m drives down (any
    two nodes of the local topology) leave |A| >= k and the proof unchanged; fewer than k
    answering is QuorumNotReached, as for the merge.

    >>> from storage.index import page_digest
    >>> def page(*keys: str) -> RowPage:
    ...     rows = [(key, "v1", 1, 1, "e") for key in keys]
    ...     return RowPage(page_digest(rows), len(keys), keys[-1], [f for r in rows for f in r])
    >>> [r.key for r in agreed_prefix([page("a/1", "b", "c/1"), page("a/1", "b", "c/2")], 2)]
    ['a/1', 'b']
    >>> agreed_prefix([page("a/1"), None], 2)
    []
    """
    full = [p for p in pages if p is not None and p.fields is not None]
    if len(full) < k:
        return []
    answered = [p.fields for p in full if p.fields is not None]
    first = answered[0]
    end = min(len(f) for f in answered)
    j = 0
    while j < end and all(f[j : j + 5] == first[j : j + 5] for f in answered):
        j += 5
    return full[0].rows()[: j // 5]


class SetCursor:
    """Readable rows of one erasure set in key order, fetched in batches.

    ``reader`` (shared across requests, one cell per set) is the drive asked for rows; the
    others send digests. It moves to another drive when the reader does not answer.

    With a ``delimiter`` (``skips_on_drive``), the drives skip-scan: a common prefix comes as
    one row (of some readable key under it), its other keys are never fetched, and the caller
    ``seek_past``es it as before.
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
        delimiter: str = "",
        k_first: bool = False,
    ) -> None:
        self.drives = drives
        self.k = k
        # k drives with equal pages decide a batch (quorum.reads_from_k): ask those first.
        self.k_first = k_first and k < len(drives)
        self.bucket = bucket
        self.prefix = prefix
        self.after = after
        self.batch = batch
        self.reader = reader if reader is not None else [0]
        self.delimiter = delimiter
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

    async def _pages(
        self, after: str, rows: bool, only_k: bool = False
    ) -> tuple[list[RowPage | None], int]:
        """Every drive's page after ``after`` (``only_k``: of k drives from the reader on,
        the others None): rows from the reader (all drives' when ``rows``), digests from the
        others; and the reader's position."""
        n = len(self.drives)
        reader = self.reader[0] % n
        asked = [(reader + i) % n for i in range(self.k)] if only_k else list(range(n))
        results = await each(
            [self.drives[p] for p in asked],
            lambda d: d.list_page(
                self.bucket,
                self.prefix,
                after,
                self.batch,
                rows or d is self.drives[reader],
                self.delimiter,
            ),
        )
        pages: list[RowPage | None] = [None] * n
        for p, r in zip(asked, results, strict=True):
            pages[p] = r if isinstance(r, RowPage) else None
        answered = sum(1 for p in pages if p is not None)
        if only_k:
            return pages, reader
        if answered < self.k:
            raise QuorumNotReached(f"{answered} drives answered a listing, {self.k} needed")
        if pages[reader] is None:  # ask one that answered next time
            self.reader[0] = next(i for i, p in enumerate(pages) if p is not None)
        return pages, reader

    def _past(self, key: str) -> str:
        """Where a skip-scan continues after the entry ``key``: past its common prefix."""
        cp = common_prefix(key, self.prefix, self.delimiter)
        return key if cp is None else cp + _AFTER_ALL

    async def _fill(self) -> None:
        after = self.after
        rows = None
        if self.k_first:  # k equal pages decide; anything else: ask every drive
            pages, reader = await self._pages(after, rows=False, only_k=True)
            rows = agreed_rows(pages, reader, self.k)
        if rows is None:
            pages, reader = await self._pages(after, rows=False)
            rows = agreed_rows(pages, reader, self.k)
        if rows is not None:
            page = next(p for p in pages if p is not None)  # all equal
            last = page.last_key if page.count >= self.batch else None
            self._extend(rows, None if last is None else self._past(last))
            return
        if self.delimiter:  # the skip-scans differ: take the entries all drives agree on
            pages, _ = await self._pages(after, rows=True)
            rows = agreed_prefix(pages, self.k)
            if rows:
                self._extend(rows, self._past(rows[-1].key))
                return
        # The drives differ right at ``after``: merge every drive's rows, key by key.
        lists = await each(
            self.drives, lambda d: d.list_versions(self.bucket, self.prefix, after, self.batch)
        )
        per_drive = [r if isinstance(r, list) else None for r in lists]
        full_pages = [r for r in per_drive if r is not None]
        if len(full_pages) < self.k:
            raise QuorumNotReached(f"{len(full_pages)} drives answered a listing, {self.k} needed")
        # Only keys up to the smallest last key of a full page are known on every drive.
        full = [r[-1].key for r in full_pages if len(r) >= self.batch]
        horizon = min(full) if full else None
        self._extend(merge_set_rows(per_drive, self.k, horizon), horizon)

    def _extend(self, rows: list[ListRow], after: str | None) -> None:
        """Buffer ``rows``; continue after ``after`` (None: nothing is left)."""
        self.buffer.extend(rows)
        if after is None:
            self.exhausted = True
        else:
            self.after = max(self.after, after)


class ErasureListing:
    def __init__(self, sets: ErasureSets, batch: int | None = None) -> None:
        self.sets = sets
        self.readers = [[0] for _ in sets.sets]  # per set: the drive asked for rows
        self.batch = batch  # entries per drive call; None: batch_size(max-keys)

    async def list_objects(
        self, bucket: str, prefix: str, delimiter: str, after: str, max_keys: int
    ) -> ListPage:
        if after and common_prefix(after, prefix, delimiter) == after:
            after += _AFTER_ALL  # continuing after a common prefix: skip everything under it
        batch = self.batch or batch_size(max_keys)
        k = self.sets.params.k
        skip = delimiter if skips_on_drive(delimiter) else ""
        k_first = reads_from_k(k, self.sets.params.m)
        cursors = [
            SetCursor(s, k, bucket, prefix, after, batch, reader, skip, k_first)
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
            heads.sort()
            if len(objects) + len(prefixes) >= max_keys:
                # max-keys=0 asks for an empty page, not truncated and without a marker (S3).
                truncated = max_keys > 0
                break
            # The smallest head, then the rest of its set's buffered rows below the next set's
            # head in the same pass (seek_past only raises the other sets' heads).
            cursor = cursors[heads[0][1]]
            bound = heads[1][0] if len(heads) > 1 else None
            row = cursor.pop()
            while True:
                cp = common_prefix(row.key, prefix, delimiter)
                if cp is not None:
                    if not prefixes or prefixes[-1] != cp:
                        prefixes.append(cp)
                    for c in cursors:
                        c.seek_past(cp)
                    last = cp
                else:
                    objects.append(row)
                    last = row.key
                buffer = cursor.buffer
                if (
                    not buffer
                    or len(objects) + len(prefixes) >= max_keys
                    or (bound is not None and buffer[0].key >= bound)
                ):
                    break
                row = buffer.popleft()
        if not objects and not prefixes:
            from storage.buckets import ErasureBuckets

            await ErasureBuckets(self.sets).head_bucket(bucket)
        return ListPage(
            objects=objects,
            common_prefixes=prefixes,
            is_truncated=truncated,
            next_marker=last if truncated else None,
        )
