"""The one-reader listing shortcut (storage.listing.agreed_rows) lists exactly what the full
per-set merge (merge_set_rows) lists, whenever it answers at all."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from storage.drive import ListRow, RowPage
from storage.index import page_digest
from storage.listing import agreed_rows, merge_set_rows

_rows = st.lists(
    st.tuples(st.sampled_from("abcd"), st.sampled_from(["v1", "v2", "v3"])),
    max_size=8,
    unique=True,
)
# A version is one record on every drive (records.py): its mod time, size and ETag are the
# same wherever it is held. Mod times vary by key, so versions order differently per key.
_MOD_TIMES = {
    (key, v): 1 + (ord(key) * 7 + int(v[1:])) % 3 for key in "abcd" for v in ("v1", "v2", "v3")
}


def _page(raw: list[tuple[str, str]]) -> list[ListRow]:
    rows = [ListRow(key, v, _MOD_TIMES[key, v], 1, "e" + v) for key, v in raw]
    return sorted(rows, key=lambda r: (r.key, -r.mod_time_ns, _desc(r.version_id)))


def _desc(version: str) -> list[int]:
    return [-ord(c) for c in version]


def _wire(rows: list[ListRow], with_rows: bool) -> RowPage:
    raw = [(r.key, r.version_id, r.mod_time_ns, r.size, r.etag) for r in rows]
    fields: list[str | int] = [f for r in raw for f in r]
    return RowPage(
        page_digest(raw),
        len(rows),
        rows[-1].key if rows else None,
        fields if with_rows else None,
    )


@given(
    pages=st.lists(st.one_of(st.none(), _rows), min_size=4, max_size=6),
    shared=_rows,
    same=st.lists(st.booleans(), min_size=6, max_size=6),
    reader=st.integers(0, 5),
    k=st.integers(1, 4),
    batch=st.integers(1, 10),
)
def test_agreed_rows_match_the_full_merge(
    pages: list[list[tuple[str, str]] | None],
    shared: list[tuple[str, str]],
    same: list[bool],
    reader: int,
    k: int,
    batch: int,
) -> None:
    # Most drives usually hold the same page: mix a shared page with arbitrary ones.
    per_drive = [
        None if p is None else _page(shared if same[i] else p)[:batch] for i, p in enumerate(pages)
    ]
    reader %= len(per_drive)
    wire = [None if p is None else _wire(p, i == reader) for i, p in enumerate(per_drive)]
    got = agreed_rows(wire, reader, k)
    if got is None:
        return
    answered = [p for p in per_drive if p is not None]
    full = [p[-1].key for p in answered if len(p) >= batch]
    horizon = min(full) if full else None
    assert got == merge_set_rows(per_drive, k, horizon)


def test_agreed_rows_needs_k_answers_and_the_readers_rows() -> None:
    rows = _page([("a", "v1")])
    assert agreed_rows([_wire(rows, True), None, None], 0, 2) is None
    assert agreed_rows([_wire(rows, False), _wire(rows, True)], 0, 2) is None
    assert agreed_rows([_wire(rows, False), _wire(rows, True)], 1, 2) == rows
