"""The headers a request on a Claude Code subscription (OAuth) account carries.

Theory of operation: subscription tokens are meant for Claude Code, so a
request made with one presents itself as Claude Code does, whoever the client
is. ``claude_code_headers`` decides, from the client's own headers:

* the client *is* Claude Code (its ``user-agent`` starts with
  ``claude-cli/``): its ``user-agent``, ``x-app`` and ``anthropic-beta`` pass
  through as sent, with the ``oauth-2025-04-20`` beta added when missing;
* any other client (an OpenAI SDK through conversion, curl, ...): the request
  carries the header set Claude Code sends: ``user-agent: claude-cli/<version>
  (external, cli)``, ``x-app: cli`` and the ``claude-code-20250219`` and
  ``oauth-2025-04-20`` betas first, then the client's own betas. The version
  comes from ``oauth.claude_code_version``.

The identity line that goes first in ``system`` is ``identity``'s part. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "CLAUDE_CODE_BETA",
    "OAUTH_BETA",
    "claude_code_headers",
    "is_claude_code",
    "merge_betas",
]

OAUTH_BETA = "oauth-2025-04-20"
CLAUDE_CODE_BETA = "claude-code-20250219"
_CLAUDE_CODE_AGENT = "claude-cli/"


def merge_betas(client_value: str | None, *flags: str) -> str:
    """The client's comma-separated beta list with each of ``flags`` present once.

    Missing flags go in front, in the order given; the client's own order is kept.
    """
    items = [item.strip() for item in (client_value or "").split(",") if item.strip()]
    missing = [flag for flag in dict.fromkeys(flags) if flag not in items]
    return ",".join([*missing, *items])


def is_claude_code(client_headers: Mapping[str, str]) -> bool:
    """True when the request comes from Claude Code itself."""
    agent = client_headers.get("user-agent") or ""
    return agent.lower().startswith(_CLAUDE_CODE_AGENT)


def claude_code_headers(
    client_headers: Mapping[str, str], version: str
) -> tuple[tuple[str, str], ...]:
    """``anthropic-beta``, ``user-agent`` and ``x-app`` for a subscription request."""
    beta = client_headers.get("anthropic-beta")
    if is_claude_code(client_headers):
        return (
            ("anthropic-beta", merge_betas(beta, OAUTH_BETA)),
            ("user-agent", client_headers["user-agent"]),
            ("x-app", client_headers.get("x-app") or "cli"),
        )
    return (
        ("anthropic-beta", merge_betas(beta, CLAUDE_CODE_BETA, OAUTH_BETA)),
        ("user-agent", f"claude-cli/{version} (external, cli)"),
        ("x-app", "cli"),
    )
