"""The client-facing inference endpoints and what each one means.

One table: path -> the client's wire format, the operation, the permission a
gateway key needs. The pipeline never looks at a path again after this.

Most paths are fixed; the Gemini API names the model in the path
(``/v1beta/models/{model}:generateContent``), so its endpoints are
``PathPattern`` templates (``MODEL_ENDPOINTS``), and the path, not the body,
says whether the answer streams. Such a stream is SSE when the query asks for
it (``alt=sse``) and a JSON array otherwise, as Google serves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..providers.base import Operation
from ..server.paths import PathPattern

__all__ = ["ENDPOINTS", "KEY_QUERY", "MODEL_ENDPOINTS", "Endpoint"]

#: the query parameter a Gemini API client may put its key in (``?key=``)
KEY_QUERY = "key"


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    client_format: str
    operation: Operation
    permission: str
    #: answers are kept for ``previous_response_id`` (``pipeline.chains``)
    keeps_responses: bool = False
    #: the path streams (True) or not (False); None: the body's ``stream`` says
    stream: bool | None = None
    #: ``name=value`` in the query that asks for SSE; without it a stream is a
    #: JSON array (None: streams are always SSE)
    sse_query: str | None = None
    #: a query parameter that may carry the gateway key (removed before anything
    #: is logged or forwarded)
    key_query: str | None = None
    #: the client's query string goes upstream (False: its parameters are the
    #: gateway's own, such as ``alt`` and ``key``)
    forward_query: bool = True
    #: the path's variable segment names the model (None: a fixed path)
    pattern: PathPattern | None = field(default=None, compare=False)

    def path_model(self, path: str) -> str | None:
        """The model the path names (``models/`` prefix removed), or None."""
        if self.pattern is None:
            return None
        value = self.pattern.match(path)
        return value.removeprefix("models/") if value is not None else None


def _gemini(method: str, operation: Operation, stream: bool) -> Endpoint:
    template = f"/v1beta/models/{{model}}:{method}"
    return Endpoint(
        template,
        "gemini-generate-content",
        operation,
        "write",
        stream=stream,
        sse_query="alt=sse",
        key_query=KEY_QUERY,
        forward_query=False,
        pattern=PathPattern.parse(template),
    )


ENDPOINTS: dict[str, Endpoint] = {
    e.path: e
    for e in (
        Endpoint("/v1/chat/completions", "openai-chat", Operation.CHAT, "write"),
        Endpoint("/v1/completions", "openai-completions", Operation.COMPLETIONS, "write"),
        Endpoint("/v1/messages", "anthropic-messages", Operation.CHAT, "write"),
        Endpoint(
            "/v1/messages/count_tokens",
            "anthropic-messages",
            Operation.COUNT_TOKENS,
            "write",
        ),
        Endpoint("/v1/responses", "openai-responses", Operation.RESPONSES, "write", True),
        Endpoint(
            "/v1/responses/input_tokens",
            "openai-responses",
            Operation.COUNT_TOKENS,
            "write",
        ),
    )
}

#: endpoints whose path names the model, by path template
MODEL_ENDPOINTS: dict[str, Endpoint] = {
    e.path: e
    for e in (
        _gemini("generateContent", Operation.CHAT, False),
        _gemini("streamGenerateContent", Operation.CHAT, True),
        _gemini("countTokens", Operation.COUNT_TOKENS, False),
    )
}
