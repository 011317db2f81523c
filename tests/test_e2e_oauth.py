"""OAuth (Claude Code subscription) accounts through a running gateway.

The whole flow runs against a fake OAuth provider and a fake Anthropic
upstream on 127.0.0.1: authorise with ``oauth start``, use the token, refresh
at expiry (once, however many requests wait), survive rotation, drop out of
rotation on ``invalid_grant`` while an API-key account keeps serving, and
refresh-and-retry once on an upstream 401.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import config_file, run_cli, wait_until
from fake_upstream import (
    Answer,
    FakeUpstream,
    answering,
    anthropic_error,
    clear_proxy_environment,
    running_gateway,
)
from prom_text import parse, value
from test_e2e_usage import scrape
from test_oauth_fakes import (
    FALLBACK_PATH,
    JSON_500,
    NO_ANSWER,
    TOKEN_PATH,
    FakeOAuthServer,
    ForwardProxy,
    assert_no_secrets,
    forward_proxy,
    oauth_server,
    point_oauth_at,
)

from llm_gateway.config.store import ConfigStore

_ = oauth_server, forward_proxy  # the fixtures, imported for pytest
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
MODEL = "claude-sonnet-4-5"


def post(
    port: int, key: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(
            "POST",
            "/v1/messages",
            body=json.dumps(body).encode(),
            headers={
                "x-api-key": key,
                "anthropic-version": "2023-06-01",
                "anthropic-beta": "interleaved-thinking-2025-05-14",
                "content-type": "application/json",
                **(headers or {}),
            },
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def message(text: str = "hi") -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": text}]}


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> ConfigStore:
    clear_proxy_environment(monkeypatch)
    return ConfigStore(Path(os.environ["LLM_GATEWAY_HOME"]) / "config.yaml")


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="from the subscription")))
        yield up


def authorised_account(store: ConfigStore, fake: FakeOAuthServer, base_url: str) -> str:
    """``upstream add --type oauth`` then the whole ``oauth start`` flow."""
    point_oauth_at(store, fake)
    view = run_cli("upstream", "add", "--type", "oauth", "--provider", "anthropic",
                   "--name", "max", "--base-url", base_url, "--json").json()  # fmt: skip
    account_id: str = view["id"]
    url = run_cli("oauth", "start", account_id, "--no-browser", "--json").json()["authorize_url"]
    pasted = fake.authorize(url)
    done = run_cli("oauth", "start", account_id, "--code", pasted, "--json")
    assert done.code == 0, done.output
    return account_id


def gateway_key() -> str:
    key: str = run_cli("apikey", "add", "--name", "k", "--json").json()["key"]
    return key


def access_token_sent(up: FakeUpstream, index: int = -1) -> str:
    header = up.requests[index].header("authorization") or ""
    assert header.startswith("Bearer ")
    return header.removeprefix("Bearer ")


def set_expiry(store: ConfigStore, account_id: str, expires_at: float) -> None:
    def mutate(document: dict[str, Any]) -> None:
        entry = next(a for a in document["upstream_accounts"] if a["id"] == account_id)
        entry["oauth"]["expires_at"] = expires_at

    store.update(mutate)


def test_a_request_uses_the_access_token_the_beta_flag_and_the_identity_line(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    authorised_account(store, oauth_server, upstream.base_url)
    key = gateway_key()
    with running_gateway(store) as (_, port):
        status, body = post(port, key, {**message(), "system": "Be brief."})
    assert status == 200, body
    assert body["content"][0]["text"] == "from the subscription"
    sent = upstream.last()
    token = access_token_sent(upstream)
    assert token in oauth_server.issued
    assert sent.header("x-api-key") is None
    betas = (sent.header("anthropic-beta") or "").split(",")
    assert betas == ["claude-code-20250219", "oauth-2025-04-20", "interleaved-thinking-2025-05-14"]
    assert sent.header_values("user-agent") == ["claude-cli/2.1.32 (external, cli)"]
    assert sent.header_values("x-app") == ["cli"]
    system = sent.json()["system"]
    assert system[0] == {"type": "text", "text": IDENTITY}
    assert system[1] == {"type": "text", "text": "Be brief."}
    text = config_file(Path(os.environ["LLM_GATEWAY_HOME"])).read_text()
    assert_no_secrets(text, oauth_server)


def test_claude_codes_own_headers_pass_through(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    authorised_account(store, oauth_server, upstream.base_url)
    key = gateway_key()
    claude_code = {
        "user-agent": "claude-cli/2.0.8 (external, cli)",
        "x-app": "cli",
        "anthropic-beta": "claude-code-20250219,oauth-2025-04-20,fine-grained-tool-streaming-2025-05-14",
    }
    with running_gateway(store) as (_, port):
        assert post(port, key, message(), claude_code)[0] == 200
        # Claude Code logged in with an API key sends no oauth beta: it is added
        without_oauth = {**claude_code, "anthropic-beta": "claude-code-20250219"}
        assert post(port, key, message(), without_oauth)[0] == 200
    first, second = upstream.requests
    for name in ("user-agent", "x-app", "anthropic-beta"):
        assert first.header_values(name) == [claude_code[name]]
    assert second.header_values("anthropic-beta") == ["oauth-2025-04-20,claude-code-20250219"]


def test_an_openai_client_is_presented_as_claude_code_with_the_configured_version(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    authorised_account(store, oauth_server, upstream.base_url)
    store.update(lambda document: document["oauth"].update(claude_code_version="2.3.4"))
    key = gateway_key()
    with running_gateway(store) as (_, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            conn.request(
                "POST",
                "/v1/chat/completions",
                body=json.dumps(
                    {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
                ).encode(),
                headers={
                    "authorization": f"Bearer {key}",
                    "content-type": "application/json",
                    "user-agent": "OpenAI/Python 1.99.0",
                    "x-stainless-lang": "python",
                },
            )
            response = conn.getresponse()
            body = json.loads(response.read())
        finally:
            conn.close()
    assert response.status == 200, body
    assert body["choices"][0]["message"]["content"] == "from the subscription"
    sent = upstream.last()
    assert sent.path == "/v1/messages"
    assert sent.header_values("user-agent") == ["claude-cli/2.3.4 (external, cli)"]
    assert sent.header_values("x-app") == ["cli"]
    assert sent.header_values("anthropic-beta") == ["claude-code-20250219,oauth-2025-04-20"]
    assert sent.json()["system"][0] == {"type": "text", "text": IDENTITY}


def test_fifty_requests_at_expiry_cause_exactly_one_refresh(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    account_id = authorised_account(store, oauth_server, upstream.base_url)
    first_refresh_token = oauth_server.current_refresh
    set_expiry(store, account_id, 1.0)  # long expired
    key = gateway_key()
    with running_gateway(store) as (_, port), ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda i: post(port, key, message(f"n{i}")), range(50)))
    assert [status for status, _ in results] == [200] * 50
    refreshes = oauth_server.token_calls("refresh_token")
    assert len(refreshes) == 1
    assert refreshes[0].body["refresh_token"] == first_refresh_token
    tokens = {access_token_sent(upstream, i) for i in range(50)}
    assert len(tokens) == 1  # everyone used the one refreshed token
    # the rotated refresh token was saved, and is the one the next refresh uses
    assert oauth_server.current_refresh != first_refresh_token
    set_expiry(store, account_id, 1.0)
    with running_gateway(store) as (_, port):
        assert post(port, key, message())[0] == 200
    second = oauth_server.token_calls("refresh_token")
    assert len(second) == 2
    assert second[1].body["refresh_token"] != first_refresh_token


def test_invalid_grant_takes_the_account_out_while_an_api_key_account_serves(
    store: ConfigStore,
    oauth_server: FakeOAuthServer,
    upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    account_id = authorised_account(store, oauth_server, upstream.base_url)
    with FakeUpstream() as keyed:
        keyed.respond(answering(Answer(text="from the api key")))
        result = run_cli("upstream", "add", "--type", "api-key", "--provider", "anthropic",
                         "--name", "keyed", "--key", "sk-ant-api-" + "k" * 24,
                         "--base-url", keyed.base_url, "--priority", "5")  # fmt: skip
        assert result.code == 0
        oauth_server.revoke()  # the refresh token no longer works
        set_expiry(store, account_id, 1.0)
        key = gateway_key()
        caplog.set_level(logging.DEBUG, logger="llm_gateway")
        with running_gateway(store) as (_, port):
            answers = [post(port, key, message()) for _ in range(3)]
        assert [status for status, _ in answers] == [200, 200, 200]
        assert {body["content"][0]["text"] for _, body in answers} == {"from the api key"}
        assert upstream.requests == []
    document = yaml.safe_load(config_file(Path(os.environ["LLM_GATEWAY_HOME"])).read_text())
    entry = next(a for a in document["upstream_accounts"] if a["id"] == account_id)
    assert entry["oauth"]["needs_reauth"] is True
    listing = run_cli("upstream", "list").out
    assert "needs re-authorisation" in listing
    status = run_cli("status").out
    assert "needs re-authorisation" in status
    assert_no_secrets("\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records),
                      oauth_server)  # fmt: skip


def test_an_upstream_401_triggers_one_refresh_and_a_retry(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    authorised_account(store, oauth_server, upstream.base_url)
    upstream.queue(anthropic_error(401, "authentication_error", "OAuth token has expired."))
    key = gateway_key()
    with running_gateway(store) as (_, port):
        status, body = post(port, key, message())
    assert status == 200, body
    assert len(oauth_server.token_calls("refresh_token")) == 1
    assert len(upstream.requests) == 2
    assert access_token_sent(upstream, 0) != access_token_sent(upstream, 1)


def test_a_second_401_after_refreshing_is_a_credential_failure_not_a_loop(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    authorised_account(store, oauth_server, upstream.base_url)
    upstream.respond(anthropic_error(401, "authentication_error", "invalid bearer token"))
    key = gateway_key()
    with running_gateway(store) as (_, port):
        status, body = post(port, key, message())
    assert status == 502
    assert body["type"] == "error"
    assert len(oauth_server.token_calls("refresh_token")) == 1
    assert len(upstream.requests) == 2


def test_an_oauth_account_not_yet_authorised_is_no_candidate_and_the_error_says_so(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    point_oauth_at(store, oauth_server)
    view = run_cli("upstream", "add", "--type", "oauth", "--provider", "anthropic",
                   "--name", "max-1", "--base-url", upstream.base_url, "--json").json()  # fmt: skip
    key = gateway_key()
    with running_gateway(store) as (_, port):
        alone = [post(port, key, message()) for _ in range(2)]
        with FakeUpstream() as keyed:
            keyed.respond(answering(Answer(text="from the api key")))
            run_cli("upstream", "add", "--type", "api-key", "--provider", "anthropic",
                    "--name", "keyed", "--key", "sk-ant-api-" + "k" * 24,
                    "--base-url", keyed.base_url, "--priority", "5")  # fmt: skip
            wait_until(lambda: post(port, key, message())[0] == 200, 10, "the reload")
            served = [post(port, key, message()) for _ in range(3)]
    for status, body in alone:  # not "overloaded, retry in 30 s"
        assert status == 502, body
        assert body["type"] == "error"
        expected = f"account 'max-1' is not authorised: run llm-gateway oauth start {view['id']}"
        assert expected in body["error"]["message"]
    assert [status for status, _ in served] == [200, 200, 200]
    assert upstream.requests == []  # the unauthorised account was never tried
    assert oauth_server.token_calls("refresh_token") == []


def test_after_invalid_grant_every_request_names_the_account_to_reauthorise(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    account_id = authorised_account(store, oauth_server, upstream.base_url)
    oauth_server.revoke()
    set_expiry(store, account_id, 1.0)
    key = gateway_key()
    with running_gateway(store) as (gateway, port):
        first = post(port, key, message())
        wait_until(
            lambda: gateway.state.config.account_by_id(account_id).oauth.needs_reauth,
            10,
            "the gateway to load the account's needs_reauth mark",
        )
        later = [post(port, key, message()) for _ in range(3)]
    hint = f"account 'max' needs re-authorisation: run llm-gateway oauth start {account_id}"
    for status, body in [first, *later]:
        assert status == 502, body  # never a 404 "no upstream serves model"
        assert hint in body["error"]["message"]
    assert upstream.requests == []


# --- a token endpoint with a passing fault ---------------------------------------------------


def health_of(port: int, account_id: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", "/health")
        accounts: dict[str, Any] = json.loads(conn.getresponse().read())["accounts"]
        return dict(accounts[account_id])
    finally:
        conn.close()


@pytest.mark.parametrize(
    "faults",
    [
        {TOKEN_PATH: [JSON_500]},
        {TOKEN_PATH: [JSON_500], FALLBACK_PATH: [JSON_500]},
        {TOKEN_PATH: [NO_ANSWER], FALLBACK_PATH: [JSON_500]},
    ],
    ids=["one-500", "500-on-both-urls", "no-answer-then-500"],
)
def test_a_token_endpoint_failing_once_is_retried_and_the_request_is_served(
    store: ConfigStore,
    oauth_server: FakeOAuthServer,
    upstream: FakeUpstream,
    faults: dict[str, list[tuple[int, str, bytes]]],
) -> None:
    account_id = authorised_account(store, oauth_server, upstream.base_url)
    set_expiry(store, account_id, 1.0)  # the first request must refresh
    oauth_server.once.update({path: list(answers) for path, answers in faults.items()})
    key = gateway_key()
    with running_gateway(store) as (_, port):
        status, body = post(port, key, message())
        assert status == 200, body
        assert body["content"][0]["text"] == "from the subscription"
        account = health_of(port, account_id)
        assert account["state"] == "healthy" and account["auth_error"] is None
    paths = [call.path for call in oauth_server.token_calls("refresh_token")]
    assert paths[: len(paths) - 1] == [  # every fault met once, in order, then a success
        path for path in (TOKEN_PATH, FALLBACK_PATH) for _ in faults.get(path, [])
    ]
    assert access_token_sent(upstream) == oauth_server.issued[-2]


def test_a_token_endpoint_outage_fails_the_request_but_does_not_take_the_account_out(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    account_id = authorised_account(store, oauth_server, upstream.base_url)
    set_expiry(store, account_id, 1.0)
    oauth_server.refuse.update({TOKEN_PATH: JSON_500, FALLBACK_PATH: JSON_500})
    key = gateway_key()
    with running_gateway(store) as (_, port):
        status, body = post(port, key, message())
        assert status == 502, body
        assert body["type"] == "error"
        assert body["error"]["message"] == "the token endpoint answered 500 (api_error)"
        # tried again with back-off, on both URLs, before giving up
        assert len(oauth_server.token_calls("refresh_token")) == 6
        account = health_of(port, account_id)
        assert account["auth_error"] is None  # the credentials are not marked as failed
        oauth_server.refuse.clear()  # the endpoint is back: so is the account, at once
        status, body = post(port, key, message())
        assert status == 200, body
    document = yaml.safe_load(config_file(Path(os.environ["LLM_GATEWAY_HOME"])).read_text())
    entry = next(a for a in document["upstream_accounts"] if a["id"] == account_id)
    assert "needs_reauth" not in entry["oauth"]


def test_refreshes_and_their_failures_are_counted_in_metrics(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    account_id = authorised_account(store, oauth_server, upstream.base_url)
    set_expiry(store, account_id, 1.0)
    oauth_server.refuse.update({TOKEN_PATH: JSON_500, FALLBACK_PATH: JSON_500})
    key = gateway_key()
    admin = run_cli("apikey", "add", "--name", "scraper", "--permissions", "read,write,admin",
                    "--json").json()["key"]  # fmt: skip
    with running_gateway(store) as (_, port):
        assert post(port, key, message())[0] == 502  # the token endpoint is down: one failure
        oauth_server.refuse.clear()
        assert post(port, key, message())[0] == 200  # it is back: one refresh
        assert post(port, key, message())[0] == 200  # the new token is still fresh: none
        status, text = scrape(port, admin)
    assert status == 200
    metrics = parse(text)
    refreshes = "llm_gateway_oauth_refreshes_total"
    assert value(metrics, refreshes, account=account_id, result="failed") == 1
    assert value(metrics, refreshes, account=account_id, result="ok") == 1
    assert len(oauth_server.token_calls("refresh_token")) == 6 + 1  # back-off tries, then one
    assert_no_secrets(text, oauth_server)


def test_a_token_endpoint_refusing_the_client_takes_the_account_out(
    store: ConfigStore, oauth_server: FakeOAuthServer, upstream: FakeUpstream
) -> None:
    account_id = authorised_account(store, oauth_server, upstream.base_url)
    set_expiry(store, account_id, 1.0)
    rejected = (401, "application/json", b'{"error": "invalid_client"}')
    oauth_server.refuse.update({TOKEN_PATH: rejected})
    key = gateway_key()
    with running_gateway(store) as (_, port):
        status, body = post(port, key, message())
        assert status == 502, body
        assert len(oauth_server.token_calls("refresh_token")) == 1  # final: no retry
        assert health_of(port, account_id)["state"] == "credentials failing"


# --- an account's own outbound proxy ----------------------------------------------------------


def test_an_account_logs_in_refreshes_and_calls_through_its_own_proxy(
    store: ConfigStore,
    oauth_server: FakeOAuthServer,
    upstream: FakeUpstream,
    forward_proxy: ForwardProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    point_oauth_at(store, oauth_server)
    added = run_cli("upstream", "add", "--type", "oauth", "--provider", "anthropic",
                    "--name", "max", "--base-url", upstream.base_url,
                    "--proxy", forward_proxy.url, "--json")  # fmt: skip
    assert added.code == 0, added.output
    account_id = added.json()["id"]
    shown = f"http://***@127.0.0.1:{forward_proxy.port}"
    assert added.json()["proxy"] == shown
    url = run_cli("oauth", "start", account_id, "--no-browser", "--json").json()["authorize_url"]
    done = run_cli("oauth", "start", account_id, "--code", oauth_server.authorize(url))
    assert done.code == 0, done.output
    assert forward_proxy.urls() == [oauth_server.base + TOKEN_PATH]  # the login
    set_expiry(store, account_id, 1.0)
    key = gateway_key()
    caplog.set_level(logging.DEBUG, logger="llm_gateway")
    with running_gateway(store) as (_, port):
        status, body = post(port, key, message())
    assert status == 200, body
    assert forward_proxy.urls() == [
        oauth_server.base + TOKEN_PATH,  # the login
        oauth_server.base + TOKEN_PATH,  # the refresh
        upstream.base_url + "/v1/messages",  # the API call
    ]
    listings = [
        run_cli("upstream", "list").out,
        run_cli("upstream", "list", "--json").out,
        run_cli("upstream", "show", account_id).out,
        run_cli("oauth", "status", account_id).out,
        "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records),
    ]
    assert shown in listings[1] and shown in listings[2]
    for text in listings:
        assert "proxy-Secret-9" not in text and "pooluser" not in text
    bad = run_cli("upstream", "update", account_id, "--proxy", "socks5://pooluser:pw-9@h:1")
    assert bad.code == 2
    assert "only http:// proxies" in bad.err and "pw-9" not in bad.output
    cleared = run_cli("upstream", "update", account_id, "--proxy", "", "--json")
    assert cleared.code == 0 and cleared.json()["proxy"] is None
