"""Errors of the OAuth package.

Theory of operation: every failure to obtain or keep an upstream token is an
``OAuthError``, an ``UpstreamError`` (502): the client's own credentials are
fine, the gateway's credential for one upstream account is not, so the request
path may move on to another account. Messages carry the HTTP status and the
provider's error code only, never a token, a code or a verifier.

``rejects_credentials`` separates the two kinds of failure: True when the
account cannot be used until someone acts (the provider refused the refresh
token or the client, the tokens cannot be read), False when the failure is
transient (the token endpoint answered 5xx, timed out or did not answer) and
the account's credentials are as good as before.
"""

from __future__ import annotations

from ..errors import UpstreamError

__all__ = [
    "CredentialsRejected",
    "EndpointRefused",
    "InvalidGrant",
    "OAuthError",
    "ReauthorizationRequired",
    "TokenStoreError",
]


class OAuthError(UpstreamError):
    """A token could not be obtained (transport failure or an error answer)."""

    status = 502
    kind = "api_error"
    #: the account's credentials are unusable until someone acts (see the module docstring)
    rejects_credentials = False

    def __init__(
        self, message: str, *, http_status: int | None = None, error_code: str | None = None
    ):
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code


class EndpointRefused(OAuthError):
    """No token endpoint gave an answer at all (connection errors, timeouts): a passing fault."""


class CredentialsRejected(OAuthError):
    """The token endpoint answered 401 or 403 with an OAuth error: not a passing fault."""

    rejects_credentials = True


class InvalidGrant(OAuthError):
    """The provider answered ``invalid_grant``: the code or refresh token is no longer valid."""

    rejects_credentials = True


class ReauthorizationRequired(OAuthError):
    """The account cannot be used until someone runs ``llm-gateway oauth start`` again.

    Status 502, not 401: a 401 would tell the client its gateway key is wrong.
    The request path should skip this account and try the others.
    """

    rejects_credentials = True


class TokenStoreError(OAuthError):
    """Tokens could not be read from or saved to the configuration file."""

    rejects_credentials = True
