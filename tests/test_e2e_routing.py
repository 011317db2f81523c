"""Routing, failover, rate limits, CORS, key denials and the access log, end to end.

A real gateway runs in a thread; several fake upstreams on 127.0.0.1 play
healthy, broken, rate-limited and hanging accounts. Requests are plain HTTP
from a thread pool (no environment proxies).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, run_cli, wait_until
from fake_upstream import (
    Answer,
    FakeUpstream,
    Hang,
    answering,
    clear_proxy_environment,
    json_reply,
    openai_error,
    running_gateway,
)

from llm_gateway.config.store import ConfigStore

MODEL = "gpt-route-test"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def post(
    port: int,
    key: str | None,
    body: dict[str, Any],
    path: str = "/v1/chat/completions",
    headers: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent = {"content-type": "application/json", **(headers or {})}
        if key is not None:
            sent["authorization"] = f"Bearer {key}"
        conn.request("POST", path, body=json.dumps(body).encode(), headers=sent)
        response = conn.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def request(port: int, method: str, path: str, headers: dict[str, str]) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def chat(text: str = "hi") -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}]}


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> ConfigStore:
    clear_proxy_environment(monkeypatch)
    return ConfigStore(Path(os.environ["LLM_GATEWAY_HOME"]) / "config.yaml")


def add_openai(name: str, base_url: str, *, priority: int = 0, weight: int = 1) -> str:
    result = run_cli(
        "upstream",
        "add",
        "--type",
        "api-key",
        "--provider",
        "openai",
        "--name",
        name,
        "--key",
        f"sk-{name}-" + "x" * 20,
        "--base-url",
        base_url,
        "--models",
        "gpt-*",
        "--priority",
        str(priority),
        "--weight",
        str(weight),
        "--json",
    )
    account_id: str = result.json()["id"]
    return account_id


def add_key(*args: str) -> tuple[str, str]:
    name = f"k-{os.urandom(4).hex()}"  # key names are unique
    data = run_cli("apikey", "add", "--name", name, "--json", *args).json()
    return data["id"], data["key"]


def set_routing(store: ConfigStore, **values: Any) -> None:
    store.update(lambda d: d.setdefault("routing", {}).update(values))


@pytest.fixture
def healthy() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="fine")))
        yield up


# --- failover ---------------------------------------------------------------------


def test_a_burst_over_broken_accounts_shows_the_client_no_error(
    store: ConfigStore, healthy: FakeUpstream
) -> None:
    refused_port = free_port()
    with FakeUpstream() as failing, FakeUpstream() as limited, FakeUpstream() as hanging:
        failing.respond(openai_error(500, "server_error", "boom"))
        limited.respond(openai_error(429, "rate_limit_error", "slow down", [("retry-after", "30")]))
        hanging.respond(Hang())
        add_openai("refused", f"http://127.0.0.1:{refused_port}/v1")
        add_openai("failing", failing.base_url + "/v1")
        add_openai("limited", limited.base_url + "/v1")
        add_openai("hanging", hanging.base_url + "/v1")
        add_openai("healthy", healthy.base_url + "/v1")
        store.update(lambda d: d["proxy"].update(response_timeout=1.0))
        _, key = add_key()
        with running_gateway(store) as (_, port), ThreadPoolExecutor(200) as pool:
            replies = list(pool.map(lambda i: post(port, key, chat(f"n{i}")), range(200)))
        statuses = [r.status for r in replies]
        assert statuses == [200] * 200
        assert all(r.json()["choices"][0]["message"]["content"] == "fine" for r in replies)
        assert len(healthy.requests) == 200
        # the broken accounts were tried, and then left alone once their circuits opened
        assert 1 <= len(failing.requests) < 200
        assert 1 <= len(limited.requests) < 200


def test_a_lone_account_answering_429_is_retried_after_retry_after(
    store: ConfigStore, healthy: FakeUpstream
) -> None:
    healthy.queue(openai_error(429, "rate_limit_error", "wait a second", [("retry-after", "1")]))
    add_openai("only", healthy.base_url + "/v1")
    _, key = add_key()
    with running_gateway(store) as (_, port):
        started = time.monotonic()
        reply = post(port, key, chat())
        waited = time.monotonic() - started
    assert reply.status == 200, reply.body
    assert reply.json()["choices"][0]["message"]["content"] == "fine"
    assert len(healthy.requests) == 2
    assert waited >= 1.0  # the gateway honoured retry-after before retrying


def test_retry_after_zero_backs_off_instead_of_hammering_a_lone_account(
    store: ConfigStore,
) -> None:
    with FakeUpstream() as limited:
        limited.respond(openai_error(429, "rate_limit_error", "slow down", [("retry-after", "0")]))
        add_openai("only", limited.base_url + "/v1")
        set_routing(store, deadline=1.5)
        _, key = add_key()
        with running_gateway(store) as (_, port):
            reply = post(port, key, chat())
    assert reply.status == 429
    assert reply.json()["error"]["message"] == "slow down"
    # waits of 0.25, 0.5, 1 s... within 1.5 s: three or four tries, not max_attempts (10)
    assert 2 <= len(limited.requests) <= 4


@pytest.mark.parametrize(
    ("status", "kind"), [(429, "rate_limit_error"), (503, "overloaded"), (529, "overloaded")]
)
def test_a_lone_account_busy_forever_holds_the_client_no_longer_than_max_retry_wait(
    store: ConfigStore, status: int, kind: str
) -> None:
    with FakeUpstream() as busy:
        busy.respond(openai_error(status, kind, "try again soon", [("retry-after", "1")]))
        add_openai("only", busy.base_url + "/v1")
        set_routing(store, max_retry_wait=2.0, failure_threshold=10)
        _, key = add_key()
        with running_gateway(store) as (_, port):
            started = time.monotonic()
            reply = post(port, key, chat(), timeout=60.0)
            waited = time.monotonic() - started
    assert reply.status == status
    assert reply.headers["retry-after"] == "1"  # the client's own back-off takes over
    assert reply.json()["error"]["message"] == "try again soon"
    # one wait of 1 s fits in 2 s; a second would not: two tries, then the answer
    assert len(busy.requests) == 2
    assert waited < 2.0 + 1.0


def test_a_long_retry_after_is_passed_to_the_client(store: ConfigStore) -> None:
    with FakeUpstream() as limited:
        limited.respond(openai_error(429, "rate_limit_error", "later", [("retry-after", "120")]))
        add_openai("only", limited.base_url + "/v1")
        _, key = add_key()
        with running_gateway(store) as (_, port):
            reply = post(port, key, chat())
    assert reply.status == 429
    assert reply.headers["retry-after"] == "120"
    assert reply.json()["error"]["message"] == "later"
    assert len(limited.requests) == 1


def test_a_failing_account_is_skipped_until_its_circuit_half_opens_and_a_probe_succeeds(
    store: ConfigStore, healthy: FakeUpstream
) -> None:
    with FakeUpstream() as primary:
        primary.respond(openai_error(500, "server_error", "down"))
        add_openai("primary", primary.base_url + "/v1", priority=0)
        add_openai("backup", healthy.base_url + "/v1", priority=1)
        set_routing(store, failure_threshold=2, open_base=1.0)
        _, key = add_key()
        with running_gateway(store) as (_, port):
            for _ in range(6):
                assert post(port, key, chat()).status == 200
            # two failures opened the circuit; the other four went straight to the backup
            assert len(primary.requests) == 2
            assert len(healthy.requests) == 6
            primary.respond(answering(Answer(text="primary again")))
            time.sleep(1.1)  # the circuit's cooldown passes: one probe may go through
            probe = post(port, key, chat())
            assert probe.json()["choices"][0]["message"]["content"] == "primary again"
            after = [post(port, key, chat()).json() for _ in range(3)]
        assert all(a["choices"][0]["message"]["content"] == "primary again" for a in after)
        assert len(primary.requests) == 2 + 1 + 3


def test_credentials_rejected_by_one_account_fail_over_and_are_shown(
    store: ConfigStore, healthy: FakeUpstream
) -> None:
    with FakeUpstream() as rejecting:
        rejecting.respond(openai_error(401, "invalid_api_key", "Incorrect API key provided"))
        bad = add_openai("bad-key", rejecting.base_url + "/v1", priority=0)
        add_openai("good", healthy.base_url + "/v1", priority=1)
        _, key = add_key()
        with running_gateway(store) as (_, port):
            replies = [post(port, key, chat()) for _ in range(3)]
            health = request(port, "GET", "/health", {}).json()
        assert [r.status for r in replies] == [200, 200, 200]
        assert len(rejecting.requests) == 1  # excluded after its credentials failed
        assert health["accounts"][bad]["state"] == "credentials failing"


def test_rejected_credentials_are_named_and_checked_again_in_the_background(
    store: ConfigStore,
) -> None:
    with FakeUpstream() as rejecting:
        rejecting.respond(openai_error(401, "invalid_api_key", "Incorrect API key provided"))
        account = add_openai("bad-key", rejecting.base_url + "/v1")
        set_routing(store, credential_retry_base=1.0)
        _, key = add_key()
        with running_gateway(store) as (_, port):
            replies = [post(port, key, chat()) for _ in range(2)]
            # the key is fixed at the provider: the background check finds out
            answer = answering(Answer(text="accepted again"))
            rejecting.respond(
                lambda r: (
                    json_reply({"object": "list", "data": []}) if r.method == "GET" else answer(r)
                )
            )
            wait_until(
                lambda: (
                    request(port, "GET", "/health", {}).json()["accounts"][account]["state"]
                    == "healthy"
                ),
                10,
                "the credential check to clear the account",
            )
            after = post(port, key, chat())
    for reply in replies:  # the first, and every one while the account is out
        assert reply.status == 502
        message = reply.json()["error"]["message"]
        assert "credentials of upstream account 'bad-key' were rejected" in message
        assert "retry in 30 s" not in message
    assert after.status == 200
    assert after.json()["choices"][0]["message"]["content"] == "accepted again"
    checks = [r for r in rejecting.requests if r.method == "GET"]
    assert checks and checks[0].path == "/v1/models"
    assert [r.method for r in rejecting.requests].count("POST") == 2  # 1 refused, 1 served


def test_upstream_enable_clears_a_credential_failure_at_once(store: ConfigStore) -> None:
    with FakeUpstream() as rejecting:
        rejecting.respond(openai_error(403, "permission_denied", "key revoked"))
        account = add_openai("revoked", rejecting.base_url + "/v1")
        _, key = add_key()
        with running_gateway(store) as (_, port):
            assert post(port, key, chat()).status == 502
            rejecting.respond(answering(Answer(text="new key works")))
            assert run_cli("upstream", "enable", account).code == 0
            wait_until(
                lambda: (
                    request(port, "GET", "/health", {}).json()["accounts"][account]["state"]
                    == "healthy"
                ),
                10,
                "the reload to clear the credential failure",
            )
            reply = post(port, key, chat())
    assert reply.status == 200
    assert reply.json()["choices"][0]["message"]["content"] == "new key works"


def test_a_client_error_is_relayed_at_once_and_never_retried(
    store: ConfigStore, healthy: FakeUpstream
) -> None:
    with FakeUpstream() as first:
        first.respond(openai_error(400, "invalid_request_error", "bad temperature"))
        add_openai("first", first.base_url + "/v1", priority=0)
        add_openai("second", healthy.base_url + "/v1", priority=1)
        _, key = add_key()
        with running_gateway(store) as (_, port):
            replies = [post(port, key, chat()) for _ in range(4)]
    assert {r.status for r in replies} == {400}
    assert replies[0].json()["error"]["message"] == "bad temperature"
    assert len(first.requests) == 4  # a client's 400 never opens the circuit
    assert healthy.requests == []


# --- per-key rate limits ----------------------------------------------------------------


def test_a_key_limited_to_5_requests_per_minute_gets_5_of_8(
    store: ConfigStore, healthy: FakeUpstream
) -> None:
    add_openai("only", healthy.base_url + "/v1")
    _, key = add_key("--rpm", "5")
    with running_gateway(store) as (_, port):
        replies = [post(port, key, chat()) for _ in range(8)]
    assert [r.status for r in replies] == [200] * 5 + [429] * 3
    assert len(healthy.requests) == 5
    for reply in replies[5:]:
        assert reply.headers["x-ratelimit-limit-requests"] == "5"
        assert reply.headers["x-ratelimit-remaining-requests"] == "0"
        assert 1 <= int(reply.headers["retry-after"]) <= 12
        assert "x-ratelimit-reset-requests" in reply.headers
        assert reply.json()["error"]["type"] == "rate_limit_error" or reply.json()["error"][
            "type"
        ] in ("rate_limit_exceeded", "requests")
    assert replies[0].headers["x-ratelimit-limit-requests"] == "5"
    assert replies[0].headers["x-ratelimit-remaining-requests"] == "4"


def test_the_tokens_per_minute_limit_counts_the_usage_upstreams_report(
    store: ConfigStore,
) -> None:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="counted", input_tokens=15, output_tokens=10)))
        add_openai("only", up.base_url + "/v1")
        _, key = add_key("--tpm", "40")
        with running_gateway(store) as (_, port):
            replies = [post(port, key, chat()) for _ in range(3)]
    # 25 tokens, then 50 (the bucket went below zero), then refused until it refills
    assert [r.status for r in replies] == [200, 200, 429]
    assert replies[2].headers["x-ratelimit-limit-tokens"] == "40"
    assert len(up.requests) == 2


def test_streamed_usage_is_counted_too(store: ConfigStore) -> None:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="streamed", input_tokens=30, output_tokens=20)))
        add_openai("only", up.base_url + "/v1")
        _, key = add_key("--tpm", "40")
        with running_gateway(store) as (_, port):
            first = post(port, key, {**chat(), "stream": True})
            second = post(port, key, chat())
    assert first.status == 200 and b"[DONE]" in first.body
    assert b'"usage"' not in first.body  # the client did not ask for it
    assert second.status == 429


# --- CORS ---------------------------------------------------------------------------


def test_cors_preflight_for_an_allowed_and_a_foreign_origin(
    store: ConfigStore, healthy: FakeUpstream
) -> None:
    add_openai("only", healthy.base_url + "/v1")
    store.update(lambda d: d["server"].update(cors_origins=["https://app.example"]))
    _, key = add_key()
    asked = "authorization, content-type, x-stainless-os, anthropic-version"
    with running_gateway(store) as (_, port):
        allowed = request(
            port,
            "OPTIONS",
            "/v1/chat/completions",
            {
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": asked,
            },
        )
        foreign = request(
            port,
            "OPTIONS",
            "/v1/chat/completions",
            {
                "origin": "https://evil.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": asked,
            },
        )
        actual = post(port, key, chat(), headers={"origin": "https://app.example"})
        foreign_actual = post(port, key, chat(), headers={"origin": "https://evil.example"})
    assert allowed.status == 204
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    allowed_headers = allowed.headers["access-control-allow-headers"]
    for name in ("authorization", "content-type", "x-stainless-os", "anthropic-version"):
        assert name in allowed_headers
    assert foreign.status == 403
    assert json.loads(foreign.body)["error"]["type"] == "invalid_request_error"  # a client error
    assert json.loads(foreign.body)["error"]["code"] == "permission_denied"
    assert "access-control-allow-origin" not in foreign.headers
    assert actual.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in actual.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in foreign_actual.headers
    assert len(healthy.requests) == 2  # preflights never reach an upstream


# --- gateway key denials ----------------------------------------------------------------


def test_every_kind_of_bad_key_is_refused_before_any_upstream_call(
    store: ConfigStore, healthy: FakeUpstream
) -> None:
    add_openai("only", healthy.base_url + "/v1")
    disabled_id, disabled = add_key()
    run_cli("apikey", "disable", disabled_id)
    _, expired = add_key("--expires", "2020-01-01")
    _, narrow = add_key("--models", "claude-*")
    _, reader = add_key("--permissions", "read")
    _, good = add_key()
    unknown = "lgw-0badc0de-" + "A" * 43
    cases: list[tuple[str | None, int, str]] = [
        (None, 401, "missing API key"),
        ("not-a-gateway-key", 401, "invalid API key"),
        (unknown, 401, "invalid API key"),
        (good[:-1] + ("A" if good[-1] != "A" else "B"), 401, "invalid API key"),
        (disabled, 401, "disabled"),
        (expired, 401, "expired"),
        (narrow, 403, MODEL),
        (reader, 403, "write"),
    ]
    with running_gateway(store) as (_, port):
        replies = [(post(port, key, chat()), status, text) for key, status, text in cases]
        anthropic = post(
            port, None, {"model": MODEL, "max_tokens": 5, "messages": []}, path="/v1/messages"
        )
        models = request(port, "GET", "/v1/models", {"authorization": f"Bearer {reader}"})
    for reply, status, text in replies:
        assert reply.status == status, (text, reply.body)
        assert text in reply.json()["error"]["message"]
        assert "lgw-" not in reply.body.decode()  # no key is ever echoed
    assert anthropic.status == 401 and anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "authentication_error"
    assert models.status == 200  # read permission is enough to list models
    assert healthy.requests == []


# --- the access log ------------------------------------------------------------------


def test_one_structured_log_line_per_request_without_secrets(
    store: ConfigStore, healthy: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    healthy.respond(answering(Answer(text="logged", input_tokens=12, output_tokens=8)))
    account = add_openai("only", healthy.base_url + "/v1")
    run_cli("upstream", "update", account, "--model-map", f"{MODEL}=gpt-4o-real")
    key_id, key = add_key()
    caplog.set_level(logging.INFO, logger="llm_gateway")
    with running_gateway(store) as (_, port):
        plain = post(port, key, chat())
        streamed = post(port, key, {**chat(), "stream": True})
        wait_until(lambda: len(_access(caplog)) >= 2, 5, "two access log lines")
    lines = _access(caplog)
    assert len(lines) == 2
    for record, reply in zip(lines, (plain, streamed), strict=True):
        fields = record.__dict__
        assert fields["request_id"] == reply.headers["x-request-id"]
        assert fields["key_id"] == key_id
        assert fields["client_format"] == "openai-chat"
        assert fields["model"] == MODEL
        assert fields["account_id"] == account
        assert fields["upstream_model"] == "gpt-4o-real"
        assert fields["status"] == 200
        assert fields["attempts"] == 1
        assert fields["latency_ms"] >= fields["ttfb_ms"] >= 0
        assert fields["input_tokens"] == 12 and fields["output_tokens"] == 8
    from llm_gateway.logs import JsonFormatter

    rendered = [json.loads(JsonFormatter().format(r)) for r in lines]
    assert rendered[0]["key_id"] == key_id and rendered[0]["status"] == 200
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert key not in everything and "sk-only-" not in everything


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "llm_gateway.access"]


def test_health_shows_each_accounts_state_to_local_callers(
    store: ConfigStore, healthy: FakeUpstream
) -> None:
    ok = add_openai("ok", healthy.base_url + "/v1")
    off = add_openai("off", healthy.base_url + "/v1")
    run_cli("apikey", "add", "--name", "x")
    run_cli("upstream", "disable", off)
    with running_gateway(store) as (_, port):
        health = request(port, "GET", "/health", {}).json()
    assert health["status"] == "ok"
    assert health["accounts"][ok]["state"] == "healthy"
    assert health["accounts"][off]["state"] == "disabled"
    assert health["upstreams"] == {"total": 2, "enabled": 1, "available": 1}


def test_active_health_checks_close_an_open_circuit_without_client_traffic(
    store: ConfigStore,
) -> None:
    with FakeUpstream() as flaky:
        flaky.respond(openai_error(500, "server_error", "down"))
        account = add_openai("flaky", flaky.base_url + "/v1")
        set_routing(store, failure_threshold=1, open_base=0.3, health_check_interval=0.2)
        _, key = add_key()
        with running_gateway(store) as (_, port):
            assert post(port, key, chat()).status == 500
            health = request(port, "GET", "/health", {}).json()
            assert health["accounts"][account]["circuit"] == "open"
            answer = answering(Answer(text="back"))
            flaky.respond(
                lambda r: (
                    json_reply({"object": "list", "data": []}) if r.method == "GET" else answer(r)
                )
            )
            wait_until(
                lambda: (
                    request(port, "GET", "/health", {}).json()["accounts"][account]["circuit"]
                    == "closed"
                ),
                5,
                "the health check to close the circuit",
            )
        probes = [r for r in flaky.requests if r.method == "GET"]
        assert probes and probes[0].path == "/v1/models"
        assert probes[0].header("authorization") == "Bearer sk-flaky-" + "x" * 20


def test_transport_errors_tell_the_client_what_failed_but_not_where(store: ConfigStore) -> None:
    refused_port = free_port()
    add_openai("refused", f"http://127.0.0.1:{refused_port}/v1")
    _, key = add_key()
    with running_gateway(store) as (_, port):
        reply = post(port, key, chat())
    assert reply.status == 502
    assert reply.json()["error"]["message"] == "could not connect to the upstream"
    assert str(refused_port) not in reply.body.decode()


def test_an_admin_key_asking_for_x_debug_stream_gets_each_stream_event_logged(
    store: ConfigStore, healthy: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    add_openai("only", healthy.base_url + "/v1")
    _, admin = add_key("--permissions", "read,write,admin")
    _, writer = add_key()
    caplog.set_level(logging.INFO, logger="llm_gateway")
    streamed = {**chat(), "stream": True}
    with running_gateway(store) as (_, port):
        post(port, writer, streamed, headers={"x-debug-stream": "true"})
        assert not [r for r in caplog.records if r.getMessage() == "stream event"]
        reply = post(port, admin, streamed, headers={"x-debug-stream": "true"})
    events = [r for r in caplog.records if r.getMessage() == "stream event"]
    assert events
    assert all(r.__dict__["request_id"] == reply.headers["x-request-id"] for r in events)
    assert "fine" in "".join(r.__dict__["reason"] for r in events)


def test_a_session_sticks_to_the_account_it_used_while_others_are_spread(
    store: ConfigStore,
) -> None:
    with FakeUpstream() as first, FakeUpstream() as second:
        first.respond(answering(Answer(text="first")))
        second.respond(answering(Answer(text="second")))
        add_openai("first", first.base_url + "/v1")
        add_openai("second", second.base_url + "/v1")
        _, key = add_key()
        with running_gateway(store) as (_, port):
            spread = [
                post(port, key, chat()).json()["choices"][0]["message"]["content"] for _ in range(4)
            ]
            sticky = [
                post(port, key, chat(), headers={"x-session-id": "conversation-1"}).json()[
                    "choices"
                ][0]["message"]["content"]
                for _ in range(5)
            ]
    assert sorted(spread) == ["first", "first", "second", "second"]
    assert len(set(sticky)) == 1


@pytest.mark.parametrize(
    ("headers", "fields"),
    [
        ({"x-claude-code-session-id": "5d0c-claude-code"}, {}),
        ({"session_id": "0199-codex"}, {}),
        ({}, {"prompt_cache_key": "0199-codex"}),
        ({}, {"metadata": {"user_id": "user_ab12_account_cd34_session_ef56"}}),
        ({"x-session-id": "any-client"}, {}),
    ],
    ids=["claude-code-header", "codex-header", "prompt-cache-key", "metadata-user-id", "x-session"],
)
def test_sessions_stick_by_the_markers_clients_really_send(
    store: ConfigStore, headers: dict[str, str], fields: dict[str, Any]
) -> None:
    with FakeUpstream() as first, FakeUpstream() as second:
        first.respond(answering(Answer(text="first")))
        second.respond(answering(Answer(text="second")))
        add_openai("first", first.base_url + "/v1")
        add_openai("second", second.base_url + "/v1")
        _, key = add_key()
        with running_gateway(store) as (_, port):
            served = [
                post(port, key, {**chat(), **fields}, headers=headers).json()["choices"][0][
                    "message"
                ]["content"]
                for _ in range(6)
            ]
    assert len(set(served)) == 1, served  # round-robin alone would alternate


def test_a_session_whose_account_fails_is_pinned_to_the_account_that_served_it(
    store: ConfigStore,
) -> None:
    with FakeUpstream() as first, FakeUpstream() as second:
        first.respond(answering(Answer(text="first")))
        second.respond(answering(Answer(text="second")))
        add_openai("first", first.base_url + "/v1")
        add_openai("second", second.base_url + "/v1")
        _, key = add_key()
        session = {"x-claude-code-session-id": "conversation-7"}

        def ask() -> str:
            reply = post(port, key, chat(), headers=session)
            return str(reply.json()["choices"][0]["message"]["content"])

        with running_gateway(store) as (_, port):
            pinned = ask()
            failing, other = (first, "second") if pinned == "first" else (second, "first")
            failing.respond(openai_error(500, "server_error", "down"))
            moved = ask()
            failing.respond(answering(Answer(text=pinned)))  # back, but no longer the pin
            later = [ask() for _ in range(4)]
    assert moved == other
    assert later == [other] * 4


def test_an_account_whose_key_cannot_be_decrypted_is_skipped(
    store: ConfigStore, healthy: FakeUpstream
) -> None:
    broken = add_openai("broken", healthy.base_url + "/v1", priority=0)
    add_openai("good", healthy.base_url + "/v1", priority=1)

    def corrupt(document: dict[str, Any]) -> None:
        entry = next(a for a in document["upstream_accounts"] if a["id"] == broken)
        entry["api_key"] = "enc:v1:" + "A" * 60

    store.update(corrupt)
    _, key = add_key()
    with running_gateway(store) as (_, port):
        replies = [post(port, key, chat()) for _ in range(2)]
        health = request(port, "GET", "/health", {}).json()
    assert [r.status for r in replies] == [200, 200]
    assert health["accounts"][broken]["state"] == "credentials failing"
