"""Types of the C extension gateway/_md5lanes.c (MD5 of up to 16 messages at once)."""

from collections.abc import Sequence

LANES: int

def md5_lanes(
    states: Sequence[bytearray], blocks: Sequence[bytes | bytearray | memoryview]
) -> None: ...
def available() -> bool: ...
