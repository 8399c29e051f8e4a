"""LIST of a large bucket: populate N keys once (kept between runs), then time 1000-key pages.

Keys are ``d<dir>/o<index>`` with ``KEYS_PER_DIR`` keys per "directory", zero-padded so that
lexical order is index order. The bucket is named after N and holds a progress object
(``_populated``: how many keys are written, in whole chunks), so an interrupted population
resumes and a finished one is reused by every later run against the same data folder or
endpoint.

Two page kinds are timed, both at random positions: a flat page (``start-after`` a random key,
max-keys 1000) and a delimiter page (``delimiter=/``, ``start-after`` a random directory: 1000
common prefixes, i.e. ``1000 * KEYS_PER_DIR`` keys the server has to step over).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.client import S3Client, S3RequestError
from bench.progress import Progress
from bench.results import WorkloadResult
from bench.workloads import CheckFailed, Meter, measure_ops, run_ops

KEYS_PER_DIR = 100
PAGE_KEYS = 1000
CHUNK_KEYS = 10_000  # population progress is recorded per chunk
MARKER = "_populated"
TINY_BODY = b"huimin-list-key!"
Log = Callable[[str], None]  # 16 bytes: the keys matter, not the data


def key_of(index: int) -> str:
    """
    >>> key_of(0), key_of(123_456)
    ('d00000/o0000000', 'd01234/o0123456')
    """
    return f"d{index // KEYS_PER_DIR:05d}/o{index:07d}"


def dir_of(index: int) -> str:
    """The delimiter listing's common prefix of key ``index``.

    >>> dir_of(123_456)
    'd01234/'
    """
    return key_of(index).partition("/")[0] + "/"


def bucket_for(keys: int) -> str:
    """
    >>> bucket_for(1_000_000)
    'huimin-bench-list-1000000'
    """
    return f"huimin-bench-list-{keys}"


@dataclass(frozen=True, slots=True)
class ListSpec:
    keys: int = 1_000_000
    pages: int = 200  # timed pages of each kind per run
    populate_concurrency: int = 64
    page_concurrency: int = 1  # latency of one page at a time is the figure
    seed: bool = False  # cluster target: bulk-load the index rows (bench/seed.py), not PUTs


async def _populated(client: S3Client, bucket: str) -> int:
    try:
        await client.create_bucket(bucket)
    except S3RequestError as exc:
        if exc.status != 409:  # BucketAlreadyOwnedByYou / BucketAlreadyExists: reuse it
            raise
    try:
        body = await client.get_object_bytes(bucket, MARKER)
    except S3RequestError as exc:
        if exc.status == 404:
            return 0
        raise
    return int(body.decode() or 0)


async def populate(client: S3Client, spec: ListSpec, progress: Progress) -> str:
    """Make sure the bucket for ``spec.keys`` holds all of its keys; its name."""
    bucket = bucket_for(spec.keys)
    done = await _populated(client, bucket)
    if done >= spec.keys:
        return bucket
    progress.start(f"populate {bucket} ({spec.keys} keys)", spec.keys)
    progress.set(done)
    for chunk_start in range(done, spec.keys, CHUNK_KEYS):
        chunk_end = min(spec.keys, chunk_start + CHUNK_KEYS)

        async def put(i: int, base: int = chunk_start) -> int:
            await client.put_object(bucket, key_of(base + i), TINY_BODY)
            return len(TINY_BODY)

        outcomes = await run_ops(chunk_end - chunk_start, spec.populate_concurrency, put, progress)
        failed = [o.error for o in outcomes if o.error is not None]
        if failed:
            progress.finish()
            raise CheckFailed(f"populating {bucket}: {len(failed)} PUT(s) failed: {failed[0]}")
        await client.put_object(bucket, MARKER, str(chunk_end).encode())
    progress.finish()
    return bucket


def seed(folder: Path, spec: ListSpec, topology: Path, region: str, log: Log) -> None:
    """Bulk-load the LIST bucket into the stopped cluster in ``folder`` (bench/seed.py)."""
    from bench.seed import seed_list_bucket

    asyncio.run(
        seed_list_bucket(
            folder,
            topology,
            bucket_for(spec.keys),
            [key_of(i) for i in range(spec.keys)],
            TINY_BODY,
            (MARKER, str(spec.keys).encode()),
            region,
            log,
        )
    )


async def check_reads(client: S3Client, bucket: str, spec: ListSpec, samples: int = 20) -> None:
    """GET a sample of the bucket's keys: a seeded population must read back like PUTs."""
    rng = random.Random(7)
    for index in rng.sample(range(spec.keys), min(samples, spec.keys)):
        body = await client.get_object_bytes(bucket, key_of(index))
        if body != TINY_BODY:
            raise CheckFailed(f"GET {key_of(index)}: {len(body)} bytes, not the populated body")


async def measure_pages(
    client: S3Client,
    bucket: str,
    spec: ListSpec,
    meter: Meter,
    progress: Progress,
    delimiter: bool,
    run_index: int,
) -> WorkloadResult:
    """Time ``spec.pages`` pages at random positions; every page is checked to be full (or to
    end the listing)."""
    rng = random.Random(run_index * 2 + int(delimiter))
    dirs = -(-spec.keys // KEYS_PER_DIR)
    starts = [rng.randrange(spec.keys) for _ in range(spec.pages)]

    async def page(i: int) -> int:
        start = starts[i]
        if delimiter:
            got = await client.list_objects_v2(
                bucket, delimiter="/", start_after=dir_of(start), max_keys=PAGE_KEYS
            )
            # Prefixes after this directory, plus the marker key at the bucket's top level
            # only when the page reaches the end; start-after a prefix skips that directory.
            expected = min(PAGE_KEYS, dirs - 1 - start // KEYS_PER_DIR)
            count = got.common_prefixes
        else:
            got = await client.list_objects_v2(
                bucket, start_after=key_of(start), max_keys=PAGE_KEYS
            )
            expected = min(PAGE_KEYS, spec.keys - 1 - start)
            count = got.keys
        if count < expected:
            raise CheckFailed(f"page after {start}: {count} entries, expected {expected}")
        return 0

    what = "delimiter page (1000 prefixes)" if delimiter else "page (1000 keys)"
    return await measure_ops(
        meter,
        progress,
        f"LIST {what} of {spec.keys} keys",
        kind="list",
        op_name="LIST",
        object_size=0,
        concurrency=spec.page_concurrency,
        op=page,
        count=spec.pages,
        figures=lambda _: {"keys_in_bucket": float(spec.keys)},
    )
