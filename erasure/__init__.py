"""Erasure coding for Huimin: codecs, shard-file arithmetic, bitrot framing, self-test.

Pure and synchronous: no IO, no asyncio, no imports from other Huimin packages. Callers run
encode/decode in threads (``asyncio.to_thread``); zfec and xxhash release the GIL, pyeclib
(isal) holds it but is fast.
"""
