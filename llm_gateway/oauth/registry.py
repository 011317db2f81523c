"""Which OAuth flow serves an account, by its provider family.

Adding a flow (for example a device-code flow) means one module and one line
here; nothing else tests a provider's name.
"""

from __future__ import annotations

from ..config.accounts import UpstreamAccount
from . import claude_code
from .errors import OAuthError
from .flow import OAuthFlow

__all__ = ["FLOWS", "flow_for"]

FLOWS: dict[str, OAuthFlow] = {
    "anthropic": claude_code.FLOW,
}


def flow_for(account: UpstreamAccount) -> OAuthFlow:
    flow = FLOWS.get(account.provider)
    if flow is None:
        raise OAuthError(
            f"upstream account {account.id}: no OAuth flow for provider {account.provider!r}"
        )
    return flow
