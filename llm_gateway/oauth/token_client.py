"""Token requests over the gateway's upstream connection pool, with the fallback URL.

Theory of operation: ``post_token`` POSTs one ``TokenRequest`` to the first of
the flow's token endpoints and returns the answer's status and body for the
flow to parse. When that answer suggests the endpoint refuses non-browser
clients (status 403, a body that is not JSON such as an HTML page, or no
answer at all: a connection or timeout error) it tries the next endpoint,
once each; any other answer, errors included, is final. The decision is the
pure ``refused``; the I/O is one request at a time under the named
``TOKEN_TIMEOUTS``. The last endpoint's answer is returned whatever it is, so
the flow can report its status and error code. Nothing here logs or raises a token: messages carry the
endpoint's host, the status, and the provider's error code at most.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .. import __version__
from ..errors import UpstreamError
from ..upstream.pool import ConnectionPool
from ..upstream.timeouts import Timeouts
from .errors import EndpointRefused
from .flow import TokenRequest

__all__ = ["MAX_TOKEN_ANSWER", "TOKEN_TIMEOUTS", "TokenAnswer", "post_token", "refused"]

log = logging.getLogger("llm_gateway.oauth")

#: limits for one token request; a refresh must not hang a client's request for long
TOKEN_TIMEOUTS = Timeouts(
    connect=10.0, tls=10.0, response_headers=30.0, stream_idle=30.0, total=45.0, pool=30.0
)
MAX_TOKEN_ANSWER = 1 << 20


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


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"


async def _post_once(
    pool: ConnectionPool, url: str, request: TokenRequest, timeouts: Timeouts
) -> TokenAnswer:
    headers = [
        ("content-type", request.content_type),
        ("accept", "application/json"),
        ("accept-encoding", "identity"),
        ("user-agent", f"llm-gateway/{__version__}"),
    ]
    response = await pool.request(
        "POST", url, headers=headers, body=request.body, timeouts=timeouts
    )
    try:
        body = await response.aread(max_bytes=MAX_TOKEN_ANSWER)
    finally:
        await response.aclose()
    return TokenAnswer(response.status, body, _host(url))


async def post_token(
    pool: ConnectionPool,
    endpoints: Sequence[str],
    request: TokenRequest,
    *,
    timeouts: Timeouts = TOKEN_TIMEOUTS,
) -> TokenAnswer:
    """The first answer that is not a refusal, else the last endpoint's answer.

    When the last endpoint gives no answer at all (connection error, timeout),
    raises ``EndpointRefused`` naming the hosts and what went wrong.
    """
    if not endpoints:
        raise ValueError("no token endpoint configured")
    problems: list[str] = []
    for index, url in enumerate(endpoints):
        last = index + 1 == len(endpoints)
        host = _host(url)
        try:
            answer = await _post_once(pool, url, request, timeouts)
        except UpstreamError as error:
            problems.append(f"{host}: {type(error).__name__}")
        else:
            if last or not refused(answer.status, answer.body):
                return answer
            problems.append(f"{host}: status {answer.status}")
        if not last:
            log.warning(
                "token endpoint refused the request; trying the fallback",
                extra={"reason": problems[-1]},
            )
    raise EndpointRefused(f"no answer from the token endpoint ({'; '.join(problems)})")
