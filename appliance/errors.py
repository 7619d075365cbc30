"""Every error the appliance raises on purpose.

    ApplianceError                      status  code
    ├── BadInput                        400     bad_input
    │   ├── InvalidValue                422     invalid
    │   │   ├── WeakPassword            422     weak_password
    │   │   └── UnknownRole             422     unknown_role
    │   └── PayloadTooLarge             413     payload_too_large
    ├── NotAuthenticated                401     not_authenticated
    │   ├── InvalidCredentials          401     invalid_credentials
    │   └── SessionExpired              401     session_expired
    ├── PermissionDenied                403     forbidden
    │   └── CsrfFailed                  403     csrf_failed
    ├── NotFound                        404     not_found
    ├── Conflict                        409     conflict
    │   └── PublishBlocked              409     publish_blocked
    ├── RateLimited                     429     rate_limited      (retryable, carries retry_after)
    ├── ConfigError                     500     config_error
    │   └── ModelError                  500     model_error
    │       ├── UnknownModel            404     unknown_model     (lists the models there are)
    │       ├── ModelMissing            500     model_missing
    │       └── ModelChecksumMismatch   500     model_checksum    (names the file and both hashes)
    ├── Overloaded                      503     overloaded        (retryable: every model slot is busy)
    ├── UpstreamError                   502     upstream_error    (retryable: the intranet inference server)
    └── StorageError                    500     storage_error
        ├── DataDirError                500     data_dir
        ├── WrongKey                    500     wrong_key
        ├── StorageFull                 507     storage_full      (retryable)
        └── SchemaError                 503     schema_not_current

Domain code raises these and nothing HTTP-shaped; `web/` maps them to JSON in one handler and the CLI turns
them into one line on stderr and exit status 2.
"""

from __future__ import annotations

from typing import Any


class ApplianceError(Exception):
    status: int = 500
    code: str = "internal"
    retryable: bool = False

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details  # structured facts for the caller (e.g. which golden questions failed)


class BadInput(ApplianceError):
    status = 400
    code = "bad_input"


class InvalidValue(BadInput):
    status = 422
    code = "invalid"


class WeakPassword(InvalidValue):
    code = "weak_password"


class UnknownRole(InvalidValue):
    code = "unknown_role"


class PayloadTooLarge(BadInput):
    status = 413
    code = "payload_too_large"


class NotAuthenticated(ApplianceError):
    status = 401
    code = "not_authenticated"


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class MfaRequired(NotAuthenticated):
    """The password was right; the code from the person's authenticator app is needed too."""

    code = "mfa_required"


class WrongMfaCode(InvalidCredentials):
    """A two-step code (or recovery code) that does not match; only ever checked after a right password."""

    code = "mfa_wrong_code"


class MfaLocked(WrongMfaCode):
    """Too many wrong two-step codes in a row: none is accepted for a while."""

    code = "mfa_locked"


class SessionExpired(NotAuthenticated):
    code = "session_expired"


class PermissionDenied(ApplianceError):
    status = 403
    code = "forbidden"


class CsrfFailed(PermissionDenied):
    code = "csrf_failed"


class NotFound(ApplianceError):
    status = 404
    code = "not_found"


class Conflict(ApplianceError):
    status = 409
    code = "conflict"


class PublishBlocked(Conflict):
    code = "publish_blocked"


class RateLimited(ApplianceError):
    status = 429
    code = "rate_limited"
    retryable = True

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigError(ApplianceError):
    code = "config_error"


class ModelError(ConfigError):
    code = "model_error"


class UnknownModel(ModelError):
    status = 404
    code = "unknown_model"


class ModelMissing(ModelError):
    code = "model_missing"


class ModelChecksumMismatch(ModelError):
    code = "model_checksum"


class Overloaded(ApplianceError):
    status = 503
    code = "overloaded"
    retryable = True


class UpstreamError(ApplianceError):
    status = 502
    code = "upstream_error"
    retryable = True


class StorageError(ApplianceError):
    code = "storage_error"


class DataDirError(StorageError):
    code = "data_dir"


class WrongKey(StorageError):
    code = "wrong_key"

    def __init__(self, message: str = "cannot open database: wrong key or not an appliance database") -> None:
        super().__init__(message)


class StorageFull(StorageError):
    status = 507
    code = "storage_full"
    retryable = True


class SchemaError(StorageError):
    status = 503
    code = "schema_not_current"
