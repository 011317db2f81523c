"""What the client asked for, read once from its request.

``parse_call`` parses the JSON body a single time (a top-level key given twice
is refused), checks the shape every request of the client's format must have
(``formats.validate``: before any upstream call, passthrough included), and
pulls out what routing needs (model, stream flag, a session hint for sticky
routing); everything after it works on the ``ClientCall``. An endpoint whose
path names the model (the Gemini API) gives the model from the path, checked
as if the body held it; the body itself is left as the client sent it (but a
token count that wraps the request, as Gemini's REST ``countTokens`` may, is
read as the request it wraps; passthrough still sends the client's bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ..errors import InvalidRequest
from ..formats.registry import FORMATS
from ..formats.validate import check_request, unwrap_count
from ..json_object import loads_object
from ..providers.base import Operation
from ..server.messages import Request
from .auth import QUERY_KEY_HEADER, presented_key
from .endpoints import Endpoint

__all__ = ["ClientCall", "consume_query", "parse_call"]


@dataclass(frozen=True, slots=True)
class ClientCall:
    """What the client asked for, parsed once."""

    endpoint: Endpoint
    body: dict[str, Any]
    model: str
    stream: bool
    session: str | None
    #: the stream is written as a JSON array, not SSE (``Endpoint.sse_query``)
    json_array: bool = False


def parse_call(
    endpoint: Endpoint,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    path: str = "",
    query: str = "",
) -> ClientCall:
    if not raw.strip():
        raise InvalidRequest("the request body is empty; expected a JSON object")
    try:
        body = loads_object(raw)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the request body is not valid JSON") from None
    except RecursionError:
        raise InvalidRequest("the request body's JSON is nested too deeply to read") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    counting = endpoint.operation is Operation.COUNT_TOKENS
    shape = FORMATS[endpoint.client_format].request_shape
    if counting:  # the REST form of Gemini's countTokens wraps the whole request
        body = unwrap_count(shape, body)
    path_model = endpoint.path_model(path)
    checked = body if path_model is None else {**body, "model": path_model}
    check_request(shape, checked, counting=counting)
    model: str = checked["model"]
    stream: bool = body.get("stream", False) if endpoint.stream is None else endpoint.stream
    json_array = stream and endpoint.sse_query is not None and not _asks(query, endpoint.sse_query)
    return ClientCall(endpoint, body, model, stream, _session_hint(body, headers), json_array)


def consume_query(request: Request, key_query: str | None) -> None:
    """Take the gateway key out of ``request.query`` (the ``key_query`` parameter),
    so it is never logged or forwarded; it becomes a header when no header
    carries a key."""
    if not request.query or key_query is None:
        return
    pairs = parse_qsl(request.query, keep_blank_values=True)
    keys = [value for name, value in pairs if name == key_query]
    if not keys:
        return
    kept = [(name, value) for name, value in pairs if name != key_query]
    request.query = urlencode(kept)
    if keys[0] and presented_key(request.header_map) is None:
        request.add_header(QUERY_KEY_HEADER, keys[0])


def _asks(query: str, parameter: str) -> bool:
    """``query`` holds ``parameter`` (``name=value``)."""
    name, _, value = parameter.partition("=")
    return (name, value) in parse_qsl(query, keep_blank_values=True)


#: headers that name a conversation, in the order they are trusted: the
#: gateway's own, Claude Code's, Codex's
_SESSION_HEADERS = ("x-session-id", "x-claude-code-session-id", "session_id")


def _session_hint(body: dict[str, Any], headers: Mapping[str, str]) -> str | None:
    """A client's conversation identity, for sticky routing (prompt caches stay warm).

    The markers clients really send: a session header, the body's
    ``prompt_cache_key`` (Codex, OpenAI), ``metadata.user_id`` (Claude Code
    puts its session in it), or ``user``.
    """
    for name in _SESSION_HEADERS:
        value = headers.get(name) or headers.get(name.replace("_", "-"))
        if value:
            return f"{name}:{value}"
    cache_key = body.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        return f"prompt_cache_key:{cache_key}"
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        return f"user_id:{metadata['user_id']}"
    user = body.get("user")
    return f"user:{user}" if isinstance(user, str) and user else None
