"""Token requests over the gateway's upstream connection pool: fallback URL, back-off.

Theory of operation: ``post_token`` POSTs one ``TokenRequest`` to the flow's
token endpoints, the preferred one first, and returns the answer's status and
body for the flow to parse. Each answer gets a verdict from the pure
``verdict``:

* ``FINAL``: an OAuth answer, success or error (``invalid_grant``, a 401): it
  is returned at once;
* ``REFUSED``: the endpoint seems to refuse non-browser clients (a 403, a
  body that is not JSON such as an HTML page): the next endpoint is tried;
* ``TRANSIENT``: the endpoint is unwell (a 5xx, 408 or 429, or no answer at
  all: a connection error or a timeout): the next endpoint is tried, and when
  every endpoint failed and one of them transiently, the round is repeated
  after a back-off (``RETRY_WAITS``), while ``TOKEN_DEADLINE`` allows.

When nothing succeeded the answer reported is a transient one if there was
one (so a brief outage is never mistaken for rejected credentials), else the
last; when that attempt got no answer at all, ``EndpointRefused`` names the
hosts and what went wrong. Each request runs under the named
``TOKEN_TIMEOUTS``. Nothing here logs or raises a token: messages carry the
endpoint's host, the status, and the provider's error code at most.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from .. import __version__
from ..errors import UpstreamError
from ..upstream.pool import ConnectionPool
from ..upstream.timeouts import Timeouts
from .errors import EndpointRefused
from .flow import TokenRequest

__all__ = [
    "MAX_TOKEN_ANSWER",
    "RETRY_WAITS",
    "TOKEN_DEADLINE",
    "TOKEN_TIMEOUTS",
    "TokenAnswer",
    "Verdict",
    "post_token",
    "refused",
    "verdict",
]

log = logging.getLogger("llm_gateway.oauth")

#: limits for one token request; a refresh must not hang a client's request for long
TOKEN_TIMEOUTS = Timeouts(
    connect=10.0, tls=10.0, response_headers=20.0, stream_idle=20.0, total=30.0, pool=20.0
)
#: no token request starts later than this after the first one (with one request's
#: ``total`` on top, shorter than ``refresh_lock.LOCK_WAIT``)
TOKEN_DEADLINE = 45.0
#: the waits before the second and the third round over the endpoints
RETRY_WAITS = (0.5, 2.0)
MAX_TOKEN_ANSWER = 1 << 20


class Verdict(Enum):
    FINAL = "final"
    REFUSED = "refused"
    TRANSIENT = "transient"


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    status: int
    body: bytes
    #: which endpoint answered (its host only, for messages)
    host: str


def refused(status: int, body: bytes) -> bool:
    """True when an answer looks like a refusal of non-browser clients, not an OAuth answer."""
    if status == 403:
        return True
    try:
        json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return True
    return False


def verdict(status: int, body: bytes) -> Verdict:
    """What one token endpoint's answer means for the next step (see the module docstring)."""
    if status >= 500 or status in (408, 429):
        return Verdict.TRANSIENT
    if refused(status, body):
        return Verdict.REFUSED
    return Verdict.FINAL


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"


async def _post_once(
    pool: ConnectionPool, url: str, request: TokenRequest, timeouts: Timeouts, proxy: str | None
) -> TokenAnswer:
    headers = [
        ("content-type", request.content_type),
        ("accept", "application/json"),
        ("accept-encoding", "identity"),
        ("user-agent", f"llm-gateway/{__version__}"),
    ]
    response = await pool.request(
        "POST", url, headers=headers, body=request.body, timeouts=timeouts, proxy=proxy
    )
    try:
        body = await response.aread(max_bytes=MAX_TOKEN_ANSWER)
    finally:
        await response.aclose()
    return TokenAnswer(response.status, body, _host(url))


@dataclass(frozen=True, slots=True)
class _Attempt:
    verdict: Verdict
    answer: TokenAnswer | None  # None: no answer at all
    problem: str


async def _attempt(
    pool: ConnectionPool, url: str, request: TokenRequest, timeouts: Timeouts, proxy: str | None
) -> _Attempt:
    host = _host(url)
    try:
        answer = await _post_once(pool, url, request, timeouts, proxy)
    except UpstreamError as error:
        return _Attempt(Verdict.TRANSIENT, None, f"{host}: {type(error).__name__}")
    return _Attempt(verdict(answer.status, answer.body), answer, f"{host}: status {answer.status}")


def _reports_better(attempt: _Attempt, report: _Attempt | None) -> bool:
    """The later attempt is reported, except a refusal after a transient failure."""
    return (
        report is None
        or attempt.verdict is Verdict.TRANSIENT
        or report.verdict is not Verdict.TRANSIENT
    )


async def post_token(
    pool: ConnectionPool,
    endpoints: Sequence[str],
    request: TokenRequest,
    *,
    timeouts: Timeouts = TOKEN_TIMEOUTS,
    retry_waits: Sequence[float] = RETRY_WAITS,
    deadline: float = TOKEN_DEADLINE,
    proxy: str | None = None,
) -> TokenAnswer:
    """The first final answer; else the last transient answer, else the last answer.

    ``proxy``: the account's own outbound proxy, if it has one.

    Raises ``EndpointRefused`` naming the hosts and what went wrong when the
    attempt to report got no answer at all (connection error, timeout).
    """
    if not endpoints:
        raise ValueError("no token endpoint configured")
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + deadline
    problems: list[str] = []
    waits = iter(retry_waits)
    report: _Attempt | None = None
    while True:
        for url in endpoints:
            if report is not None and loop.time() >= give_up_at:
                break
            attempt = await _attempt(pool, url, request, timeouts, proxy)
            if attempt.verdict is Verdict.FINAL and attempt.answer is not None:
                return attempt.answer
            problems.append(attempt.problem)
            log.warning(
                "token request failed",
                extra={"reason": f"{attempt.problem} ({attempt.verdict.value})"},
            )
            if _reports_better(attempt, report):
                report = attempt
        assert report is not None  # the first round always makes an attempt
        wait = next(waits, None) if report.verdict is Verdict.TRANSIENT else None
        if wait is None or loop.time() + wait >= give_up_at:
            break
        await asyncio.sleep(wait)
    if report.answer is not None:
        return report.answer
    raise EndpointRefused(f"no answer from the token endpoint ({'; '.join(problems)})")
