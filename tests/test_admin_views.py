"""What the admin endpoints say about accounts and keys (pure: config and health
snapshots in, JSON data out, times passed in)."""

from __future__ import annotations

from llm_gateway.admin.views import account_state, account_view, key_view
from llm_gateway.config.schema import Config, parse_config
from llm_gateway.ledger.query import BudgetUse
from llm_gateway.routing.health import FailureKind, HealthPolicy, HealthTracker

WALL = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MONO = 1000.0


def config(**oauth: object) -> Config:
    return parse_config(
        {
            "gateway_keys": [
                {
                    "id": "k0000001",
                    "name": "team",
                    "hash": "h" * 64,
                    "permissions": ["read", "write"],
                    "budget": 20,
                    "budget_period": "week",
                }
            ],
            "upstream_accounts": [
                {
                    "id": "up-key",
                    "name": "key",
                    "type": "api-key",
                    "provider": "anthropic",
                    "api_key": "sealed-value",
                },
                {
                    "id": "up-sub",
                    "name": "sub",
                    "type": "oauth",
                    "provider": "anthropic",
                    "oauth": {
                        "access_token": "sealed-token",
                        "refresh_token": "sealed-refresh",
                        **oauth,
                    },
                },
            ],
        }
    )


def test_an_oauth_account_shows_its_expiry_and_never_its_tokens() -> None:
    cfg = config(expires_at=WALL + 3600, last_refresh=WALL - 60)
    sub = cfg.upstream_accounts[1]
    view = account_view(sub, HealthTracker().snapshot("up-sub", MONO), MONO, WALL)
    assert view["state"] == "healthy"
    assert view["oauth"] == {
        "authorized": True,
        "needs_reauth": False,
        "expires_at": "2026-01-01T01:00:00+00:00",
        "expires_in_s": 3600.0,
        "last_refresh": "2025-12-31T23:59:00+00:00",
        "last_error": None,
    }
    assert "sealed" not in str(view)


def test_states_an_operator_acts_on() -> None:
    cfg = config(needs_reauth=True)
    key, sub = cfg.upstream_accounts
    health = HealthTracker(HealthPolicy(failure_threshold=1, open_base=30, rate_limit_default=20))
    assert account_state(sub, health.snapshot("up-sub", MONO), MONO) == "needs re-authorisation"
    health.record_rate_limited("up-key", MONO, 20.0)
    view = account_view(key, health.snapshot("up-key", MONO + 5), MONO + 5, WALL)
    assert view["state"] == "rate limited" and view["cooldown_s"] == 15.0
    assert view["oauth"] is None and "sealed" not in str(view)
    health = HealthTracker(HealthPolicy(failure_threshold=1, open_base=30))
    health.record_failure("up-key", MONO, FailureKind.SERVER_ERROR)
    view = account_view(key, health.snapshot("up-key", MONO + 10), MONO + 10, WALL)
    assert view["state"] == "circuit open" and view["circuit_open_s"] == 20.0
    assert view["last_error"] == "server_error" and view["last_error_s_ago"] == 10.0
    health.record_auth_failure("up-key", MONO, "invalid x-api-key")
    assert account_state(key, health.snapshot("up-key", MONO), MONO) == "credentials failing"
    disabled = parse_config(
        {
            "upstream_accounts": [
                {
                    "id": "up-x",
                    "name": "x",
                    "type": "api-key",
                    "provider": "anthropic",
                    "api_key": "s",
                    "enabled": False,
                }
            ]
        }
    ).upstream_accounts[0]
    assert account_state(disabled, health.snapshot("up-x", MONO), MONO) == "disabled"


def test_a_key_shows_its_limits_and_budget_never_its_hash() -> None:
    key = config().gateway_keys[0]
    plain = key_view(key)
    assert plain["budget"] == 20 and plain["budget_period"] == "week"
    assert plain["budget_spent"] is None and "h" * 64 not in str(plain)
    spent = key_view(key, BudgetUse(spent=3.25, start=WALL, end=WALL + 7 * 86400))
    assert spent["budget_spent"] == 3.25
    assert spent["budget_resets_at"] == "2026-01-08T00:00:00+00:00"
