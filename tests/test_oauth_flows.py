"""The pure parts of the OAuth package: PKCE, the Claude Code flow's data, token
answers, the fallback decision, the identity line, and the ``oauth`` settings."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.config.accounts import OAuthSettings, UpstreamAccount
from llm_gateway.config.fields import SchemaError
from llm_gateway.config.schema import Config, default_document, parse_config
from llm_gateway.oauth import claude_code, pkce
from llm_gateway.oauth.errors import CredentialsRejected, InvalidGrant, OAuthError
from llm_gateway.oauth.flow import (
    OAuthFlow,
    Owner,
    PastedCodeFlow,
    Tokens,
    parse_token_response,
)
from llm_gateway.oauth.identity import CLAUDE_CODE_IDENTITY, apply_claude_code_identity
from llm_gateway.oauth.presentation import claude_code_headers
from llm_gateway.oauth.registry import flow_for
from llm_gateway.oauth.token_client import Verdict, refused, verdict

DEFAULTS = OAuthSettings()

# --- PKCE ---------------------------------------------------------------------------------


def test_s256_challenge_matches_the_rfc_7636_example() -> None:
    # RFC 7636, appendix B
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=pkce.MIN_VERIFIER, max_value=pkce.MAX_VERIFIER))
def test_verifiers_have_the_asked_length_and_only_unreserved_characters(length: int) -> None:
    verifier = pkce.make_verifier(length)
    assert len(verifier) == length
    assert re.fullmatch(r"[A-Za-z0-9_-]+", verifier)
    challenge = pkce.s256_challenge(verifier)
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64decode(challenge + "=") == digest


@pytest.mark.parametrize("length", [42, 129])
def test_verifier_lengths_outside_the_rfc_are_refused(length: int) -> None:
    with pytest.raises(ValueError):
        pkce.make_verifier(length)


def test_verifiers_and_states_are_random() -> None:
    assert len({pkce.make_verifier() for _ in range(20)}) == 20
    states = {pkce.make_state() for _ in range(20)}
    assert len(states) == 20 and all(len(s) == 43 for s in states)


# --- the Claude Code flow --------------------------------------------------------------------


def test_authorize_url_with_the_default_settings() -> None:
    url = claude_code.authorize_url(DEFAULTS, "CHALLENGE", "STATE")
    assert url == (
        "https://claude.ai/oauth/authorize?code=true"
        "&client_id=9d1c250a-e61b-44d9-88ed-5944d1962f5e&response_type=code"
        "&redirect_uri=https%3A%2F%2Fconsole.anthropic.com%2Foauth%2Fcode%2Fcallback"
        "&scope=org%3Acreate_api_key%20user%3Aprofile%20user%3Ainference"
        "&code_challenge=CHALLENGE&code_challenge_method=S256&state=STATE"
    )


def test_authorize_url_keeps_a_query_the_setting_already_has() -> None:
    custom = OAuthSettings(authorize_url="http://127.0.0.1:9/authorize?tenant=x")
    url = claude_code.authorize_url(custom, "c", "s")
    assert url.startswith("http://127.0.0.1:9/authorize?tenant=x&code=true&")
    assert dict(parse_qsl(urlsplit(url).query))["tenant"] == "x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc#def", ("abc", "def")),
        ("  abc#def\n", ("abc", "def")),
        ("https://console.anthropic.com/oauth/code/callback?code=abc&state=def", ("abc", "def")),
        ("https://x.example/cb?state=def&code=a%2Bb", ("a+b", "def")),
    ],
)
def test_pasted_codes(text: str, expected: tuple[str, str]) -> None:
    assert claude_code.parse_pasted_code(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "abc#",
        "#def",
        "a#b#c",
        "ab c#def",
        "https://x.example/cb?code=abc",
        "https://x.example/cb?code=a&code=b&state=s",
    ],
)
def test_malformed_pasted_codes(text: str) -> None:
    with pytest.raises(claude_code.PastedCodeError):
        claude_code.parse_pasted_code(text)


def test_exchange_and_refresh_bodies() -> None:
    assert claude_code.exchange_body(DEFAULTS, "the-code", "the-state", "the-verifier") == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "state": "the-state",
        "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
        "redirect_uri": "https://console.anthropic.com/oauth/code/callback",
        "code_verifier": "the-verifier",
    }
    assert claude_code.refresh_body(DEFAULTS, "the-refresh-token") == {
        "grant_type": "refresh_token",
        "refresh_token": "the-refresh-token",
        "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
    }


def test_the_flow_object_encodes_json_and_lists_the_fallback() -> None:
    flow = claude_code.FLOW
    assert isinstance(flow, OAuthFlow) and isinstance(flow, PastedCodeFlow)
    request = flow.refresh_request(Config(), "rt")
    assert request.content_type == "application/json"
    assert json.loads(request.body) == claude_code.refresh_body(DEFAULTS, "rt")
    assert "rt" not in repr(request)
    assert flow.token_endpoints(Config()) == (
        "https://console.anthropic.com/v1/oauth/token",
        "https://api.anthropic.com/v1/oauth/token",
    )
    no_fallback = Config(oauth=OAuthSettings(token_fallback_url=""))
    assert flow.token_endpoints(no_fallback) == ("https://console.anthropic.com/v1/oauth/token",)


def test_flows_are_found_by_provider() -> None:
    anthropic = UpstreamAccount(id="a", name="a", type="oauth", provider="anthropic")
    assert flow_for(anthropic) is claude_code.FLOW
    openai = UpstreamAccount(id="o", name="o", type="oauth", provider="openai")
    with pytest.raises(OAuthError, match="no OAuth flow for provider 'openai'"):
        flow_for(openai)


# --- token answers ---------------------------------------------------------------------------


def answer(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_a_token_answer() -> None:
    body = answer({"access_token": "at", "refresh_token": "rt", "expires_in": 28800})
    tokens = parse_token_response(200, body, now=1000.0, previous_refresh=None)
    assert tokens == Tokens("at", "rt", 29800.0)
    assert "at" not in repr(tokens).replace("expires_at", "")


def test_a_token_answer_says_whose_tokens_they_are() -> None:
    body = answer({
        "access_token": "at",
        "account": {"uuid": "acc-1", "email_address": "me@example.com"},
        "organization": {"uuid": "org-1", "name": "  Me\u0007 " + "x" * 300},
    })  # fmt: skip
    owner = parse_token_response(200, body, now=0.0, previous_refresh=None).owner
    assert owner == Owner("acc-1", "me@example.com", "org-1", ("Me " + "x" * 300)[:200])
    odd = answer({"access_token": "at", "account": "me", "organization": {"name": 5}})
    assert parse_token_response(200, odd, now=0.0, previous_refresh=None).owner is None


@pytest.mark.parametrize(
    ("extra", "refresh", "expires_at"),
    [
        ({}, "old", None),  # no refresh token: keep the previous one; no expiry: unknown
        ({"refresh_token": ""}, "old", None),
        ({"expires_in": "60"}, "old", 1060.0),
        ({"expires_in": 0}, "old", None),
        ({"expires_in": True}, "old", None),
        ({"refresh_token": "new", "expires_in": 1.5}, "new", 1001.5),
    ],
)
def test_token_answer_variants(
    extra: dict[str, Any], refresh: str, expires_at: float | None
) -> None:
    body = answer({"access_token": "at", **extra})
    tokens = parse_token_response(200, body, now=1000.0, previous_refresh="old")
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_at) == (
        "at",
        refresh,
        expires_at,
    )


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            400,
            answer({"error": "invalid_grant", "error_description": "token rt-SECRET is bad"}),
            InvalidGrant,
            "the token endpoint answered 400 (invalid_grant)",
        ),
        (
            401,
            answer({"error": "invalid_client"}),
            CredentialsRejected,
            "the token endpoint answered 401 (invalid_client)",
        ),
        (
            403,
            answer({"error": "forbidden"}),
            CredentialsRejected,
            "the token endpoint answered 403 (forbidden)",
        ),
        (
            500,
            answer({"error": {"type": "api_error", "message": "Internal"}}),
            OAuthError,
            "the token endpoint answered 500 (api_error)",
        ),
        (
            429,
            answer({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}),
            OAuthError,
            "the token endpoint answered 429 (rate_limit_error)",
        ),
        (
            400,
            answer({"error": "weird code with spaces rt-SECRET"}),
            OAuthError,
            "the token endpoint answered 400",
        ),
        (502, b"<html>bad gateway</html>", OAuthError, "the token endpoint answered 502"),
        (
            200,
            b"<html>log in</html>",
            OAuthError,
            "the token endpoint answered 200 without a JSON object",
        ),
        (
            200,
            answer({"token_type": "Bearer"}),
            OAuthError,
            "the token endpoint answered 200 without an access_token",
        ),
    ],
)
def test_token_errors_carry_status_and_code_only(
    status: int, body: bytes, error: type[OAuthError], message: str
) -> None:
    with pytest.raises(OAuthError) as caught:
        parse_token_response(status, body, now=0.0, previous_refresh="rt-SECRET")
    assert type(caught.value) is error
    assert caught.value.message == message == str(caught.value)
    assert caught.value.status == 502
    assert caught.value.http_status == (status if status != 200 else None)
    # only a refusal takes the account out; a passing fault (5xx, 429) does not
    assert caught.value.rejects_credentials is (error is not OAuthError)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (403, b"<html>forbidden</html>", True),
        (403, answer({"error": "forbidden"}), True),
        (200, b"<!DOCTYPE html><html></html>", True),
        (503, b"upstream connect error", True),
        (200, answer({"access_token": "x"}), False),
        (400, answer({"error": "invalid_grant"}), False),
        (500, answer({"error": "server_error"}), False),
    ],
)
def test_what_counts_as_a_refusal_of_non_browser_clients(
    status: int, body: bytes, expected: bool
) -> None:
    assert refused(status, body) is expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, answer({"access_token": "x"}), Verdict.FINAL),
        (400, answer({"error": "invalid_grant"}), Verdict.FINAL),
        (401, answer({"error": "invalid_client"}), Verdict.FINAL),
        (403, b"<html>forbidden</html>", Verdict.REFUSED),
        (200, b"<!DOCTYPE html><html></html>", Verdict.REFUSED),
        (500, answer({"error": "server_error"}), Verdict.TRANSIENT),
        (503, b"upstream connect error", Verdict.TRANSIENT),
        (529, answer({"type": "error", "error": {"type": "overloaded_error"}}), Verdict.TRANSIENT),
        (429, answer({"error": "rate_limited"}), Verdict.TRANSIENT),
        (408, b"", Verdict.TRANSIENT),
    ],
)
def test_which_token_answers_are_final_refusals_or_passing_faults(
    status: int, body: bytes, expected: Verdict
) -> None:
    assert verdict(status, body) is expected


# --- the headers of subscription requests ---------------------------------------------------


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (  # any other client: Claude Code's header set, the client's betas kept after it
            {"user-agent": "OpenAI/Python 1.99.0", "anthropic-beta": "b1, b2"},
            (
                ("anthropic-beta", "claude-code-20250219,oauth-2025-04-20,b1,b2"),
                ("user-agent", "claude-cli/7.8.9 (external, cli)"),
                ("x-app", "cli"),
            ),
        ),
        (
            {},
            (
                ("anthropic-beta", "claude-code-20250219,oauth-2025-04-20"),
                ("user-agent", "claude-cli/7.8.9 (external, cli)"),
                ("x-app", "cli"),
            ),
        ),
        (  # Claude Code itself: its values pass, the oauth beta added when missing
            {
                "user-agent": "claude-cli/2.0.8 (external, sdk-ts)",
                "x-app": "cli",
                "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
            },
            (
                (
                    "anthropic-beta",
                    "oauth-2025-04-20,claude-code-20250219,interleaved-thinking-2025-05-14",
                ),
                ("user-agent", "claude-cli/2.0.8 (external, sdk-ts)"),
                ("x-app", "cli"),
            ),
        ),
    ],
    ids=["openai-sdk", "bare", "claude-code"],
)
def test_subscription_requests_present_themselves_as_claude_code(
    client: dict[str, str], expected: tuple[tuple[str, str], ...]
) -> None:
    assert claude_code_headers(client, "7.8.9") == expected


# --- the identity line ---------------------------------------------------------------------

IDENTITY_BLOCK = {"type": "text", "text": CLAUDE_CODE_IDENTITY}


def test_the_identity_line_is_claude_codes() -> None:
    assert CLAUDE_CODE_IDENTITY == "You are Claude Code, Anthropic's official CLI for Claude."


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (None, [IDENTITY_BLOCK]),
        ("", [IDENTITY_BLOCK]),
        ([], [IDENTITY_BLOCK]),
        ("Be brief.", [IDENTITY_BLOCK, {"type": "text", "text": "Be brief."}]),
        (
            [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            [
                IDENTITY_BLOCK,
                {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
            ],
        ),
        (  # the identity later on does not count: it must come first
            [{"type": "text", "text": "Be brief."}, IDENTITY_BLOCK],
            [IDENTITY_BLOCK, {"type": "text", "text": "Be brief."}, IDENTITY_BLOCK],
        ),
        (  # the identity followed by more text in one string is not the identity block
            CLAUDE_CODE_IDENTITY + "\nBe brief.",
            [IDENTITY_BLOCK, {"type": "text", "text": CLAUDE_CODE_IDENTITY + "\nBe brief."}],
        ),
    ],
)
def test_the_identity_block_is_put_first(system: Any, expected: list[Any]) -> None:
    body: dict[str, Any] = {"model": "claude-x", "messages": [], "max_tokens": 5}
    if system is not None:
        body["system"] = system
    original = copy.deepcopy(body)
    result = apply_claude_code_identity(body)
    assert result["system"] == expected
    assert {k: v for k, v in result.items() if k != "system"} == {
        k: v for k, v in original.items() if k != "system"
    }
    assert body == original  # the input is untouched
    assert apply_claude_code_identity(result) is result  # and applying it twice changes nothing


@pytest.mark.parametrize(
    "system",
    [
        CLAUDE_CODE_IDENTITY,
        " " + CLAUDE_CODE_IDENTITY + "\n",
        [IDENTITY_BLOCK],
        [{**IDENTITY_BLOCK, "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "x"}],
        42,  # not a valid system value: left for the upstream to reject
    ],
)
def test_a_body_that_already_starts_with_the_identity_is_returned_as_is(system: Any) -> None:
    body = {"model": "claude-x", "system": system, "messages": []}
    assert apply_claude_code_identity(body) is body


# --- settings --------------------------------------------------------------------------------


def test_oauth_settings_default_to_claude_codes_client() -> None:
    assert parse_config(default_document()).oauth == OAuthSettings()
    assert OAuthSettings() == OAuthSettings(
        authorize_url="https://claude.ai/oauth/authorize",
        token_url="https://console.anthropic.com/v1/oauth/token",
        token_fallback_url="https://api.anthropic.com/v1/oauth/token",
        client_id="9d1c250a-e61b-44d9-88ed-5944d1962f5e",
        redirect_uri="https://console.anthropic.com/oauth/code/callback",
        scopes=("org:create_api_key", "user:profile", "user:inference"),
        refresh_margin=300.0,
        claude_code_version="2.1.32",
    )


def test_oauth_settings_are_read_from_the_config() -> None:
    document = default_document()
    document["oauth"] = {
        "authorize_url": "http://127.0.0.1:1/authorize",
        "token_url": "http://127.0.0.1:1/token",
        "token_fallback_url": "",
        "client_id": "test-client",
        "redirect_uri": "http://127.0.0.1:1/callback",
        "scopes": ["a", "b"],
        "refresh_margin": 60,
        "claude_code_version": "2.3.4",
    }
    assert parse_config(document).oauth == OAuthSettings(
        authorize_url="http://127.0.0.1:1/authorize",
        token_url="http://127.0.0.1:1/token",
        token_fallback_url="",
        client_id="test-client",
        redirect_uri="http://127.0.0.1:1/callback",
        scopes=("a", "b"),
        refresh_margin=60.0,
        claude_code_version="2.3.4",
    )


@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        ({"token_url": "ftp://x"}, "oauth.token_url", "must be an http:// or https:// URL"),
        ({"scopes": []}, "oauth.scopes", "must name at least one scope"),
        ({"refresh_margin": -1}, "oauth.refresh_margin", "must not be negative"),
        ({"client": "x"}, "oauth.client", "unknown setting"),
        (
            {"claude_code_version": "2.1 (x)"},
            "oauth.claude_code_version",
            "must be a version such as 2.1.32",
        ),
        (
            {"claude_code_version": 2.1},
            "oauth.claude_code_version",
            "must be a string, not float",
        ),
    ],
)
def test_bad_oauth_settings_are_named(section: dict[str, Any], path: str, message: str) -> None:
    document = default_document()
    document["oauth"] = section
    with pytest.raises(SchemaError) as caught:
        parse_config(document)
    assert (caught.value.path, caught.value.detail) == (path, message)
