"""Google Gemini: the Gemini API (Google AI Studio) and servers that speak it.

``POST {base}/models/{model}:generateContent``, or
``{base}/models/{model}:streamGenerateContent?alt=sse`` when the client asked
for a stream; ``{base}/models/{model}:countTokens`` for token counts;
``GET {base}/models`` for the health probe. The model is part
of the path (quoted; a ``models/`` prefix is not doubled), so the body
carries none. The key goes in the ``x-goog-api-key`` header, never in the
URL, and the client's own query string is not forwarded (a Gemini client's
``?key=`` must not reach the upstream). Base URLs include the version, as
Google's SDKs use them (``https://generativelanguage.googleapis.com/v1beta``);
``--base-url`` points an account at a proxy or another server with the same
API.

Gemini answers a key it does not accept with 400 ``INVALID_ARGUMENT``, not
401, and says so in ``error.details``: a ``google.rpc.ErrorInfo`` whose
``reason`` is ``API_KEY_INVALID``. ``refuses_credentials`` reads that, so
the account is excluded and the next one tried, as on a 401.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote

from ..config.schema import UpstreamAccount
from ..formats.token_counts import gemini_count_request, read_gemini_count
from .base import Operation, Provider, TokenCounter, UpstreamTarget

__all__ = ["PROVIDER"]

_METHODS = {Operation.CHAT: ":generateContent", Operation.COUNT_TOKENS: ":countTokens"}
_STREAM_METHOD = ":streamGenerateContent?alt=sse"
#: the ``ErrorInfo`` reasons that mean the key itself was refused
_KEY_REFUSED = frozenset({"API_KEY_INVALID"})


def _target(
    account: UpstreamAccount,
    credential: str,
    operation: Operation,
    upstream_model: str,
    client_headers: Mapping[str, str],
    query: str,
    stream: bool,
) -> UpstreamTarget:
    base = PROVIDER.base_url(account)
    if operation is Operation.MODELS:
        url = base + "/models"
    else:
        model = quote(upstream_model.removeprefix("models/"), safe="-._~")
        streams = stream and operation is Operation.CHAT
        url = f"{base}/models/{model}" + (_STREAM_METHOD if streams else _METHODS[operation])
    headers = [("content-type", "application/json")]
    if credential:
        headers.append(("x-goog-api-key", credential))
    headers.extend(account.quirks.extra_headers)
    return UpstreamTarget(url=url, headers=tuple(headers))


def _refuses_key(status: int, body: bytes) -> bool:
    """A 400 whose ``error.details`` name the key as invalid."""
    if status != 400 or b"API_KEY_INVALID" not in body:
        return False
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return False
    error = parsed.get("error") if isinstance(parsed, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return False
    return any(isinstance(d, dict) and d.get("reason") in _KEY_REFUSED for d in details)


PROVIDER = Provider(
    name="gemini",
    wire_formats={Operation.CHAT: "gemini-generate-content"},
    default_base_url="https://generativelanguage.googleapis.com/v1beta",
    default_models=("gemini-*",),
    build_target=_target,
    token_counter=TokenCounter("gemini-generate-content", gemini_count_request, read_gemini_count),
    refuses_credentials=_refuses_key,
)
