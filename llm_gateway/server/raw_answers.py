"""Status lines and the answers the server frames by hand.

Theory of operation: h11 writes whatever reason phrase it is given, and a
status ``http.HTTPStatus`` does not know (an upstream's 529) would go out
with none; ``reason`` gives every status one: the standard phrase, a known
extra one, or its class's. When the server refuses a request it could not
read (h11 is in no state to frame an answer), ``raw_error`` frames the
error response itself, close-delimited. ``default_error`` is the error shape
of a server used without an application's renderer (tests, tools).
"""

from __future__ import annotations

import functools
import json
from http import HTTPStatus

from .messages import Response

__all__ = ["default_error", "raw_error", "reason"]

#: statuses the gateway relays that ``http.HTTPStatus`` does not know
_EXTRA_REASONS = {529: "Site Overloaded"}
#: the reason for any other unknown status, by class
_CLASS_REASONS = {1: "Informational", 2: "Success", 3: "Redirection", 4: "Client Error"}


@functools.lru_cache(maxsize=64)
def reason(status: int) -> bytes:
    """Every status line gets a reason phrase, known status or not."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        phrase = _EXTRA_REASONS.get(status) or _CLASS_REASONS.get(status // 100, "Server Error")
        return phrase.encode("ascii")


def _error_body(status: int, message: str) -> bytes:
    kind = "invalid_request_error" if status < 500 else "api_error"
    payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return json.dumps(payload, separators=(",", ":")).encode()


def default_error(status: int, message: str, path: str) -> Response:
    return Response(status, [("content-type", "application/json")], _error_body(status, message))


def raw_error(response: Response, request_id: str) -> bytes:
    """``response`` framed by hand, close-delimited, for when h11 cannot frame one."""
    body = response.body if isinstance(response.body, bytes) else b""
    head = "".join(
        [
            f"HTTP/1.1 {response.status} {reason(response.status).decode()}\r\n",
            *[f"{name}: {value}\r\n" for name, value in response.headers],
            f"content-length: {len(body)}\r\n",
            f"x-request-id: {request_id}\r\n",
            "connection: close\r\n\r\n",
        ]
    )
    return head.encode("latin-1") + body
