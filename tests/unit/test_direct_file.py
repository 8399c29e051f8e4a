"""storage.direct_file on real files: every size around the alignment and buffer edges lands
byte for byte, written around the page cache where the file system allows it, and buffered
where it refuses; pooled buffers never carry one file's bytes into another."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Any

import pytest

from storage import direct_file
from storage.direct_file import ALIGN, BUFFER_BYTES, DirectFile

SIZES = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, BUFFER_BYTES - 1, BUFFER_BYTES, BUFFER_BYTES + 1]


@pytest.mark.parametrize("size", [*SIZES, 3 * BUFFER_BYTES + ALIGN + 17])
def test_a_file_holds_exactly_what_was_written(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    f = DirectFile(str(tmp_path / "shard"))
    # uneven pieces, as a gateway's framed blocks come
    pieces = [data[i : i + 300_001] for i in range(0, size, 300_001)]
    f.write(pieces)
    assert f.size == size
    f.finish()
    assert (tmp_path / "shard").read_bytes() == data


def o_direct(f: DirectFile) -> bool:
    return bool(fcntl.fcntl(f._fd, fcntl.F_GETFL) & os.O_DIRECT)


def test_a_file_goes_direct_from_its_first_whole_buffer(tmp_path: Path) -> None:
    f = DirectFile(str(tmp_path / "shard"))
    try:
        f.write([b"x" * (BUFFER_BYTES - 1)])
        assert not f.direct and not o_direct(f)  # nothing written yet
        f.write([b"x" * 2])
        assert o_direct(f) == f.direct  # direct if this file system allows it
    finally:
        f.close()


def test_a_small_file_is_written_through_the_page_cache(tmp_path: Path) -> None:
    f = DirectFile(str(tmp_path / "shard"))
    f.write([b"x" * (BUFFER_BYTES // 8)])
    assert not f.direct and not o_direct(f)
    f.finish()
    assert (tmp_path / "shard").stat().st_size == BUFFER_BYTES // 8


def test_buffered_when_the_file_system_refuses_direct_io(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fcntl = fcntl.fcntl

    def refuse_direct(fd: int, cmd: int, arg: int = 0) -> Any:
        if cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, "no O_DIRECT here")
        return real_fcntl(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", refuse_direct)
    data = os.urandom(BUFFER_BYTES + 12345)
    f = DirectFile(str(tmp_path / "shard"))
    f.write([data])
    assert not f.direct
    f.finish()
    assert (tmp_path / "shard").read_bytes() == data


def test_a_file_that_exists_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "shard").write_bytes(b"committed")
    with pytest.raises(FileExistsError):
        DirectFile(str(tmp_path / "shard"))
    assert (tmp_path / "shard").read_bytes() == b"committed"


def test_pooled_buffers_carry_nothing_between_files(tmp_path: Path) -> None:
    big = DirectFile(str(tmp_path / "big"))
    big.write([b"\xff" * (BUFFER_BYTES - 1)])
    big.finish()  # its buffer, nearly full of 0xff, goes back to the pool
    small = DirectFile(str(tmp_path / "small"))
    small.write([b"abc"])
    small.finish()
    assert (tmp_path / "small").read_bytes() == b"abc"


def test_close_without_finish_keeps_the_buffer_out_of_the_pool(tmp_path: Path) -> None:
    f = DirectFile(str(tmp_path / "shard"))
    buffer = f._buffer
    assert buffer is not None
    f.write([b"x" * 10])
    f.close()  # an aborted receive may still be filling it
    assert all(b is not buffer for b in direct_file._buffers._free)


def test_past_the_buffer_budget_files_go_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_file, "_buffers", direct_file._Buffers())
    monkeypatch.setattr(direct_file, "MAX_BUFFERS", 1)
    first = DirectFile(str(tmp_path / "first"))
    second = DirectFile(str(tmp_path / "second"))  # no aligned buffer left
    data = os.urandom(3 * BUFFER_BYTES + 5)
    for f in (first, second):
        f.write([data])
    assert o_direct(first) == first.direct
    assert not second.direct and not o_direct(second)
    first.finish()
    second.finish()
    third = DirectFile(str(tmp_path / "third"))  # the first's buffer, reused
    assert third._buffer is not None
    third.close()
    assert (tmp_path / "first").read_bytes() == data
    assert (tmp_path / "second").read_bytes() == data


def test_direct_writes_refused_after_all_fall_back_without_writing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write

    def refuse_direct_writes(fd: int, data: Any) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "alignment refused")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", refuse_direct_writes)
    data = os.urandom(2 * BUFFER_BYTES + 777)
    f = DirectFile(str(tmp_path / "shard"))
    f.write([data[: BUFFER_BYTES + 5], data[BUFFER_BYTES + 5 :]])
    assert not f.direct and not o_direct(f)
    f.finish()
    assert (tmp_path / "shard").read_bytes() == data


def test_a_closed_file_takes_no_more_bytes(tmp_path: Path) -> None:
    # An aborted shard's late writes must fail, never land in a buffer another file now uses.
    f = DirectFile(str(tmp_path / "shard"))
    f.write([b"x" * 10])
    f.close()
    with pytest.raises(ValueError, match="closed"):
        f.write([b"late"])
    with pytest.raises(ValueError, match="closed"):
        f.finish()
    f.close()  # twice is harmless
