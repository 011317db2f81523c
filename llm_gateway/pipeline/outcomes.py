"""What one upstream attempt's result means for the account and for the request.

Theory of operation: ``classify_status`` and ``classify_error`` turn an HTTP
status or a transport error into an ``Outcome`` (``classify_answer`` also
reads an error body the provider knows to mean a refused credential);
``record`` tells the health tracker (a client's 400 never counts against an
account, a 401/403 is a credential problem, not a provider health problem, a
429 is a cooldown, not a failure, and ``BUSY``, the gateway's own limits (its
pool's queue timed out, or it ran out of file descriptors), is never the
account's: nothing is recorded but the return of a probe slot); ``Outcome.retryable`` says whether
the next candidate should be tried (only ever before the first byte reached
the client).
"""

from __future__ import annotations

from enum import Enum

from ..errors import UpstreamError, UpstreamTimeout
from ..providers.base import Provider
from ..routing.health import FailureKind, HealthTracker
from ..upstream.errors import (
    ConnectError,
    ConnectTimeout,
    LocalResourceError,
    PoolTimeout,
    ProxyError,
    RemoteProtocolError,
    ResponseHeadersTimeout,
    ResponseTooLarge,
    StreamIdleTimeout,
    TLSError,
    TLSTimeout,
    TotalTimeout,
)

__all__ = [
    "Outcome",
    "classify_answer",
    "classify_error",
    "classify_status",
    "client_safe",
    "record",
]


class Outcome(Enum):
    OK = "ok"
    CLIENT_ERROR = "client_error"
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    OVERLOADED = "overloaded"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    PROTOCOL = "protocol"
    BUSY = "busy"  # the gateway's own limits (pool, descriptors): not the account's fault

    @property
    def retryable(self) -> bool:
        return self not in (Outcome.OK, Outcome.CLIENT_ERROR)


_FAILURE_KINDS = {
    Outcome.SERVER_ERROR: FailureKind.SERVER_ERROR,
    Outcome.OVERLOADED: FailureKind.OVERLOADED,
    Outcome.CONNECT: FailureKind.CONNECT,
    Outcome.TIMEOUT: FailureKind.TIMEOUT,
    Outcome.PROTOCOL: FailureKind.PROTOCOL,
}


def classify_status(status: int) -> Outcome:
    if status < 400:
        return Outcome.OK
    if status in (401, 403):
        return Outcome.AUTH_FAILED
    if status == 429:
        return Outcome.RATE_LIMITED
    if status == 529 or status == 503:
        return Outcome.OVERLOADED
    if status >= 500 or status == 408:
        return Outcome.SERVER_ERROR
    return Outcome.CLIENT_ERROR


def classify_answer(provider: Provider, status: int, body: bytes) -> Outcome:
    """``classify_status``, with the errors the provider reads as a refused
    credential (``Provider.refuses_credentials``) counted as one."""
    outcome = classify_status(status)
    if outcome is Outcome.CLIENT_ERROR and provider.refuses_credentials(status, body):
        return Outcome.AUTH_FAILED
    return outcome


def classify_error(error: UpstreamError) -> Outcome:
    if isinstance(error, (PoolTimeout, LocalResourceError)):
        return Outcome.BUSY
    if isinstance(error, UpstreamTimeout):
        return Outcome.TIMEOUT
    if isinstance(error, RemoteProtocolError):
        return Outcome.PROTOCOL
    return Outcome.CONNECT


def record(
    health: HealthTracker,
    account_id: str,
    outcome: Outcome,
    now: float,
    *,
    latency: float = 0.0,
    retry_after: float | None = None,
    message: str = "",
) -> None:
    if outcome is Outcome.OK:
        health.record_success(account_id, now, latency)
    elif outcome is Outcome.CLIENT_ERROR:
        health.record_client_error(account_id, now)
    elif outcome is Outcome.BUSY:
        health.release_probe(account_id, now)
    elif outcome is Outcome.AUTH_FAILED:
        health.record_auth_failure(account_id, now, message or "credentials rejected")
    elif outcome is Outcome.RATE_LIMITED:
        health.record_rate_limited(account_id, now, retry_after)
    else:
        health.record_failure(account_id, now, _FAILURE_KINDS[outcome])


#: what a client is told about a transport failure: the kind of failure, never the
#: upstream's address or internal detail (those go to the log)
_CLIENT_MESSAGES: tuple[tuple[type[UpstreamError], str], ...] = (
    (ConnectTimeout, "timed out connecting to the upstream"),
    (TLSTimeout, "timed out during the TLS handshake with the upstream"),
    (ResponseHeadersTimeout, "the upstream did not answer in time"),
    (StreamIdleTimeout, "the upstream stopped sending data"),
    (TotalTimeout, "the upstream took too long to answer"),
    (PoolTimeout, "the gateway is busy; no upstream connection became free in time"),
    (
        LocalResourceError,
        "the gateway is at its connection limit (out of file descriptors); retry shortly",
    ),
    (ProxyError, "the outbound proxy refused or failed the connection"),
    (TLSError, "the TLS connection to the upstream failed"),
    (ConnectError, "could not connect to the upstream"),
    (ResponseTooLarge, "the upstream's response is larger than the gateway accepts"),
    (RemoteProtocolError, "the upstream broke off the connection"),
)


def client_safe(error: UpstreamError) -> UpstreamError:
    """The same error with a message fit for clients (no hosts, ports or internals)."""
    for cls, text in _CLIENT_MESSAGES:
        if isinstance(error, cls):
            safe = UpstreamError(text, status=error.status)
            safe.kind = error.kind
            return safe
    return error
