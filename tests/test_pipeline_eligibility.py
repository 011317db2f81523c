"""What the client is told when no account can take its request."""

from __future__ import annotations

from llm_gateway.config.accounts import OAuthState, UpstreamAccount
from llm_gateway.errors import RateLimited, ServiceUnavailable, UpstreamError
from llm_gateway.pipeline.eligibility import not_servable, unavailable_error
from llm_gateway.routing.health import FailureKind, HealthPolicy, HealthTracker


def account(name: str, kind: str = "api-key", oauth: OAuthState | None = None) -> UpstreamAccount:
    return UpstreamAccount(
        id=f"up-{name}", name=name, type=kind, provider="anthropic", oauth=oauth or OAuthState()
    )


def test_oauth_accounts_waiting_for_someone_say_what_to_run() -> None:
    fresh = account("max-1", "oauth")
    revoked = account("max-2", "oauth", OAuthState(refresh_token="x", needs_reauth=True))
    ready = account("max-3", "oauth", OAuthState(access_token="a", refresh_token="r"))
    assert not_servable(fresh) == (
        "account 'max-1' is not authorised: run llm-gateway oauth start up-max-1"
    )
    assert not_servable(revoked) == (
        "account 'max-2' needs re-authorisation: run llm-gateway oauth start up-max-2"
    )
    assert not_servable(ready) is None and not_servable(account("keyed")) is None


def test_only_rejected_credentials_is_a_502_naming_the_account() -> None:
    health = HealthTracker(HealthPolicy(auth_base=60.0))
    health.record_auth_failure("up-a", 0.0, "upstream answered 401")
    error = unavailable_error("m", [account("a")], health, 10.0)
    assert isinstance(error, UpstreamError) and error.status == 502
    assert error.message == (
        "no upstream account can serve model 'm': the credentials of upstream account 'a' "
        "were rejected (upstream answered 401); checked again in 50 s"
    )


def test_accounts_out_for_a_while_are_a_503_with_the_soonest_retry() -> None:
    health = HealthTracker(HealthPolicy(failure_threshold=1, open_base=20.0))
    health.record_rate_limited("up-a", 0.0, 7.5)
    health.record_failure("up-b", 0.0, FailureKind.CONNECT)
    health.record_auth_failure("up-c", 0.0, "upstream answered 403")
    error = unavailable_error("m", [account("a"), account("b"), account("c")], health, 1.0)
    assert isinstance(error, ServiceUnavailable)
    assert ("retry-after", "7") in error.headers
    assert "account 'a' is rate limited for 7 s" in error.message
    assert "account 'b' is failing (paused for 19 s)" in error.message
    assert "credentials of upstream account 'c' were rejected" in error.message


def test_accounts_that_are_all_rate_limited_are_a_429() -> None:
    health = HealthTracker()
    health.record_rate_limited("up-a", 0.0, 1.0)
    error = unavailable_error("m", [account("a")], health, 0.2)
    assert isinstance(error, RateLimited)
    assert ("retry-after", "1") in error.headers
    assert "account 'a' is rate limited for 1 s" in error.message
