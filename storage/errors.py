"""Domain errors of the object layer. The gateway maps each to an S3 error in gateway/errors.py."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every object-layer error."""


class BucketNotFound(StorageError):
    pass


class BucketExists(StorageError):
    pass


class BucketNotEmpty(StorageError):
    pass


class ObjectNotFound(StorageError):
    pass


class VersionNotFound(StorageError):
    pass


class UploadNotFound(StorageError):
    pass


class PartNotFound(StorageError):
    pass


class PartTooSmall(StorageError):
    pass


class InvalidPartOrder(StorageError):
    pass


class QuorumNotReached(StorageError):
    """Fewer drives answered than the operation's quorum needs."""


class PreconditionNotMet(StorageError):
    pass


class InvalidObjectName(StorageError):
    pass


class IncompleteUpload(StorageError):
    """The upload body ended before its announced size."""


class DriveError(StorageError):
    """One drive failed (IO error, timeout, offline). Reduced by quorum, never sent to clients."""


class DriveNotFound(DriveError):
    """The requested record or shard does not exist on this drive."""


class BitrotError(DriveError):
    """A shard block failed its hash check."""
