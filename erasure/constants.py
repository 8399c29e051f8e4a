"""Sizes and version of the on-disk shard format (see ``erasure.framing``).

Kept apart so that ``layout`` (arithmetic) and ``framing`` (bytes) can both use them without
importing each other.
"""

from typing import Final

FORMAT_VERSION: Final = 1
# xxh3-128 digest written before each shard block payload.
FRAME_HASH_BYTES: Final = 16
# Fixed-size header at the start of every shard file.
SHARD_HEADER_BYTES: Final = 32
