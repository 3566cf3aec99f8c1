"""Errors the service reports to callers: each has a machine-readable code and an HTTP status. The status comes
from the class (raise `ForbiddenError(message, code=...)`, not `FaceGateError(..., status_code=403)`); the code
names the case for the caller. SetupError is the other kind: what keeps the service from starting as configured."""

from typing import Any


class FaceGateError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status_code = status_code or self.status_code
        self.details = details


class UnauthorizedError(FaceGateError):
    """The caller is not known: no key, an unknown or revoked key, a page session that ended."""

    status_code = 401
    code = "unauthorized"


class ForbiddenError(FaceGateError):
    """The caller is known but may not do this."""

    status_code = 403
    code = "forbidden"


class UnprocessableError(FaceGateError):
    """A well-formed request with a value that cannot be used (out of range, too large, not what it must be)."""

    status_code = 422
    code = "validation_error"


class InvalidImageError(FaceGateError):
    code = "invalid_image"


class UnsupportedImageTypeError(FaceGateError):
    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLargeError(FaceGateError):
    status_code = 413
    code = "file_too_large"


class FaceRejectedError(FaceGateError):
    """A photo that is a valid image but fails a face check (no face, several faces, too small, blurry...)."""

    status_code = 422


class NotFoundError(FaceGateError):
    status_code = 404


class ConflictError(FaceGateError):
    status_code = 409


class SetupError(Exception):
    """The database, the weights or the model files are not usable as configured: `facegate` commands print the
    message in one line (cli.main) instead of a traceback, so it says which setting to fix."""
