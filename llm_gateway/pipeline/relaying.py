"""How an inference handler's result becomes the response the client gets.

Theory of operation: when every account failed and the last one answered
with an error the client should see as it was, the request path raises
``RelayedResponse`` carrying that answer; ``relaying`` wraps each inference
route's handler, turns it back into the response, and names the account that
answered (``x-llm-gateway-account``) on the response or the error once one was
chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import GatewayError
from ..server.messages import Request, Response
from .exchange import account_header

__all__ = ["RelayedResponse", "relaying"]


class RelayedResponse(GatewayError):
    """An upstream error answer to relay as-is when no other account can help."""

    def __init__(self, response: Response):
        super().__init__("upstream error", status=response.status)
        self.response = response


async def relaying(handler: Callable[[Request], Any], request: Request) -> Response:
    """Run ``handler``; an upstream error answer kept for relaying becomes the response.
    Once an account was chosen, the response (or error) names it."""
    try:
        response: Response = await handler(request)
    except RelayedResponse as relayed:
        response = relayed.response
    except GatewayError as error:
        name = request.notes.get("account_name")
        if isinstance(name, str):
            error.headers = [*error.headers, account_header(name)]
        raise
    name = request.notes.get("account_name")
    if isinstance(name, str):
        response.headers.append(account_header(name))
    return response
