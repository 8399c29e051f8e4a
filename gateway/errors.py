"""S3 errors: one class per S3 error code, and the table from domain errors to S3 errors.

The class name is the S3 ``Code``; ``status`` and ``message`` are class attributes. Anything not
in the table becomes ``InternalError`` (logged with a traceback by the caller, details never sent).
"""

from __future__ import annotations

from typing import ClassVar

from storage import errors as domain


class S3Error(Exception):
    """Base of every error the gateway turns into an S3 XML error body."""

    status: ClassVar[int] = 500
    message: ClassVar[str] = "We encountered an internal error. Please try again."

    def __init__(self, detail: str | None = None, **extra: str) -> None:
        super().__init__(detail or self.message)
        self.detail = detail or self.message
        # Extra XML elements (e.g. BucketName, Key, ArgumentName); never secrets.
        self.extra = extra
        # Extra response headers (e.g. a 304's ETag and Last-Modified).
        self.headers: dict[str, str] = {}

    @property
    def code(self) -> str:
        return type(self).__name__


class InternalError(S3Error):
    status = 500
    message = "We encountered an internal error. Please try again."


class AccessDenied(S3Error):
    status = 403
    message = "Access Denied"


class SignatureDoesNotMatch(S3Error):
    status = 403
    message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    )


class InvalidAccessKeyId(S3Error):
    status = 403
    message = "The AWS Access Key Id you provided does not exist in our records."


class RequestTimeTooSkewed(S3Error):
    status = 403
    message = "The difference between the request time and the server's time is too large."


class ExpiredToken(S3Error):
    status = 400
    message = "The provided token has expired."


class AuthorizationHeaderMalformed(S3Error):
    status = 400
    message = "The authorization header is malformed."


class AuthorizationQueryParametersError(S3Error):
    status = 400
    message = "Error parsing the X-Amz-Credential parameter."


class MissingSecurityHeader(S3Error):
    status = 400
    message = "Your request was missing a required header."


class InvalidArgument(S3Error):
    status = 400
    message = "Invalid Argument"


class InvalidRequest(S3Error):
    status = 400
    message = "Invalid Request"


class InvalidDigest(S3Error):
    status = 400
    message = "The Content-MD5 you specified was invalid."


class BadDigest(S3Error):
    status = 400
    message = "The Content-MD5 you specified did not match what we received."


class XAmzContentSHA256Mismatch(S3Error):
    status = 400
    message = "The provided 'x-amz-content-sha256' header does not match what was computed."


class IncompleteBody(S3Error):
    status = 400
    message = "You did not provide the number of bytes specified by the Content-Length header."


class MissingContentLength(S3Error):
    status = 411
    message = "You must provide the Content-Length HTTP header."


class EntityTooLarge(S3Error):
    status = 400
    message = "Your proposed upload exceeds the maximum allowed object size."


class EntityTooSmall(S3Error):
    status = 400
    message = "Your proposed upload is smaller than the minimum allowed object size."


class KeyTooLongError(S3Error):
    status = 400
    message = "Your key is too long."


class MalformedXML(S3Error):
    status = 400
    message = "The XML you provided was not well-formed or did not validate against our schema."


class InvalidBucketName(S3Error):
    status = 400
    message = "The specified bucket is not valid."


class BucketAlreadyExists(S3Error):
    status = 409
    message = "The requested bucket name is not available."


class BucketAlreadyOwnedByYou(S3Error):
    status = 409
    message = "Your previous request to create the named bucket succeeded and you already own it."


class BucketNotEmpty(S3Error):
    status = 409
    message = "The bucket you tried to delete is not empty."


class NoSuchBucket(S3Error):
    status = 404
    message = "The specified bucket does not exist."


class NoSuchKey(S3Error):
    status = 404
    message = "The specified key does not exist."


class NoSuchUpload(S3Error):
    status = 404
    message = "The specified upload does not exist."


class InvalidPart(S3Error):
    status = 400
    message = "One or more of the specified parts could not be found."


class InvalidPartOrder(S3Error):
    status = 400
    message = "The list of parts was not in ascending order."


class InvalidRange(S3Error):
    status = 416
    message = "The requested range is not satisfiable."


class PreconditionFailed(S3Error):
    status = 412
    message = "At least one of the preconditions you specified did not hold."


class NotModified(S3Error):
    status = 304
    message = "Not Modified"


class ConditionalRequestConflict(S3Error):
    status = 409
    message = "A conflicting conditional operation is currently in progress against this resource."


class MethodNotAllowed(S3Error):
    status = 405
    message = "The specified method is not allowed against this resource."


class NotImplemented(S3Error):  # the S3 error code is literally "NotImplemented"
    status = 501
    message = "A header you provided implies functionality that is not implemented."


class InvalidURI(S3Error):
    status = 400
    message = "Couldn't parse the specified URI."


class InvalidObjectState(S3Error):
    status = 403
    message = "The operation is not valid for the current state of the object."


class ServiceUnavailable(S3Error):
    status = 503
    message = "Reduce your request rate or try again later: not enough drives are available."


class SlowDown(S3Error):
    status = 503
    message = "Please reduce your request rate."


class RequestTimeout(S3Error):
    status = 400
    message = (
        "Your socket connection to the server was not read from or written to within the "
        "timeout period."
    )


class InvalidStorageClass(S3Error):
    status = 400
    message = "The storage class you specified is not valid."


class InvalidEncryptionAlgorithmError(S3Error):
    status = 400
    message = "The encryption request you specified is not valid."


class MetadataTooLarge(S3Error):
    status = 400
    message = "Your metadata headers exceed the maximum allowed metadata size."


class InvalidPartNumber(S3Error):
    status = 416
    message = "The requested partnumber is not satisfiable."


class UnexpectedContent(S3Error):
    status = 400
    message = "This request does not support content."


# Domain error -> S3 error. A test checks that every class in storage.errors is mapped here.
DOMAIN_TO_S3: dict[type, type[S3Error]] = {
    domain.BucketNotFound: NoSuchBucket,
    domain.BucketExists: BucketAlreadyOwnedByYou,
    domain.BucketNotEmpty: BucketNotEmpty,
    domain.ObjectNotFound: NoSuchKey,
    domain.VersionNotFound: NoSuchKey,
    domain.UploadNotFound: NoSuchUpload,
    domain.PartNotFound: InvalidPart,
    domain.PartTooSmall: EntityTooSmall,
    domain.InvalidPartOrder: InvalidPartOrder,
    domain.QuorumNotReached: ServiceUnavailable,
    domain.PreconditionNotMet: PreconditionFailed,
    domain.InvalidObjectName: InvalidArgument,
    domain.IncompleteUpload: IncompleteBody,
    domain.DriveError: ServiceUnavailable,
    domain.StorageError: InternalError,
}


def to_s3_error(exc: BaseException) -> S3Error:
    """Map any exception to the S3 error sent to the client (InternalError when unmapped)."""
    if isinstance(exc, S3Error):
        return exc
    if isinstance(exc, domain.StorageError):
        for cls in type(exc).__mro__:
            target = DOMAIN_TO_S3.get(cls)
            if target is not None:
                return target()
    return InternalError()
