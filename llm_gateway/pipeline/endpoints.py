"""The client-facing inference endpoints and what each one means.

One table: path -> the client's wire format, the operation, the permission a
gateway key needs. The pipeline never looks at a path again after this.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..providers.base import Operation

__all__ = ["ENDPOINTS", "Endpoint"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    client_format: str
    operation: Operation
    permission: str
    #: answers are kept for ``previous_response_id`` (``pipeline.chains``)
    keeps_responses: bool = False


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
