"""The gateway's one error hierarchy.

Theory of operation: every failure the gateway reports to a client is a
``GatewayError``. Each class knows its HTTP status and a neutral ``kind``; the
client format's codec turns (status, kind, message) into the client's own
error shape (OpenAI ``{"error": {...}}``, Anthropic ``{"type": "error", ...}``).
Foreign exceptions (OSError, ssl.SSLError, h11 errors, json errors) are
translated into these classes at exactly one edge each: the upstream client
for outbound I/O, the server for inbound I/O, the codecs for JSON shapes.

Messages must never contain secrets: callers pass descriptions, not values.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "GatewayError",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "SecretKeyError",
    "ServiceUnavailable",
    "StateUnavailable",
    "UpstreamError",
    "UpstreamHTTPError",
    "UpstreamTimeout",
]


class GatewayError(Exception):
    """Base class: an error with an HTTP status and a neutral kind."""

    status: int = 500
    kind: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.param = param
        #: response headers the client should get with this error (retry-after, ...)
        self.headers: list[tuple[str, str]] = headers or []
        if status is not None:
            self.status = status


class InvalidRequest(GatewayError):
    """The client's request is malformed or asks for something impossible."""

    status = 400
    kind = "invalid_request_error"


class AuthenticationError(GatewayError):
    status = 401
    kind = "authentication_error"


class PermissionDenied(GatewayError):
    status = 403
    kind = "permission_error"


class NotFound(GatewayError):
    status = 404
    kind = "not_found_error"


class PayloadTooLarge(GatewayError):
    status = 413
    kind = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    kind = "rate_limit_error"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        headers: list[tuple[str, str]] | None = None,
    ):
        super().__init__(message, headers=headers)
        self.retry_after = retry_after


class ServiceUnavailable(GatewayError):
    status = 503
    kind = "overloaded_error"


class StateUnavailable(ServiceUnavailable):
    """The shared state's server (Redis) cannot be reached; callers fall back to local state."""


class UpstreamError(GatewayError):
    """The upstream could not be reached or spoke nonsense."""

    status = 502
    kind = "api_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    kind = "timeout_error"


class UpstreamHTTPError(GatewayError):
    """The upstream answered with an error status; relayed to the client."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        kind: str = "api_error",
        headers: list[tuple[str, str]] | None = None,
    ):
        super().__init__(message, status=status, headers=headers)
        self.kind = kind


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid.

    Not an HTTP error: the CLI prints it and exits 1; the server refuses to
    start (or keeps its last good configuration when reloading).
    """


class SecretKeyError(ConfigError):
    """The secret key is missing, malformed, or does not decrypt a stored secret."""
