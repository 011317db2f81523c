"""Model names end to end: glob model maps, aliases, fallbacks, output caps, /v1/models.

The set-up of the Claude Code recipe: an Anthropic client (Claude Code) asks
for its changing ``claude-*`` names, and a gateway sends them to an
OpenAI-compatible server that knows only ``qwen2.5``. The client always sees
the name it asked for.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, wait_until
from fake_upstream import (
    Answer,
    FakeUpstream,
    Received,
    Respond,
    add_account,
    add_gateway_key,
    answering,
    anthropic_error,
    clear_proxy_environment,
    json_reply,
    openai_error,
    running_gateway,
)

from llm_gateway.config.store import ConfigStore

OPENAI_KEY = "sk-local-" + "q" * 24
ANTHROPIC_KEY = "sk-ant-api-" + "a" * 24


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> ConfigStore:
    clear_proxy_environment(monkeypatch)
    return ConfigStore(Path(os.environ["LLM_GATEWAY_HOME"]) / "config.yaml")


def call(
    port: int, key: str, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        if path != "/v1/messages":
            headers = {"authorization": f"Bearer {key}"}
        data = None if body is None else json.dumps(body).encode()
        conn.request(
            method, path, body=data, headers={**headers, "content-type": "application/json"}
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def stream_text(port: int, key: str, body: dict[str, Any]) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        conn.request("POST", "/v1/messages", body=json.dumps(body).encode(), headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()


def claude_code(model: str, max_tokens: int = 32000) -> dict[str, Any]:
    """A request as Claude Code sends it (32k output tokens asked for)."""
    return {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "hello"}],
    }


def local_server(up: FakeUpstream, models: list[str] | None = None) -> None:
    """An OpenAI-compatible server: chat answers, and a model list when asked."""
    answer = answering(Answer(text="from qwen"))
    listing = {"object": "list", "data": [{"id": m, "object": "model"} for m in models or []]}

    def handler(request: Received) -> Respond | Any:
        return json_reply(listing) if request.method == "GET" else answer(request)

    up.respond(handler)


def set_top(store: ConfigStore, **sections: Any) -> None:
    store.update(lambda document: document.update(sections))


def test_a_glob_model_map_sends_every_claude_model_to_a_local_one(store: ConfigStore) -> None:
    with FakeUpstream() as local:
        local_server(local)
        account = add_account(
            "openai",
            local.base_url + "/v1",
            name="local",
            key=OPENAI_KEY,
            models="qwen*",
            model_map="claude-*=qwen2.5,claude-opus-4-1=qwen-max",
        )
        key = add_gateway_key()
        with running_gateway(store) as (_, port):
            haiku = call(
                port, key, "POST", "/v1/messages", claude_code("claude-haiku-4-5-20251001")
            )
            opus = call(port, key, "POST", "/v1/messages", claude_code("claude-opus-4-1"))
        listing = run_cli("upstream", "list").out
        shown = run_cli("upstream", "show", account).out
    assert haiku[0] == 200, haiku
    assert haiku[1]["model"] == "claude-haiku-4-5-20251001"  # the name the client asked for
    assert haiku[1]["content"][0]["text"] == "from qwen"
    # exact names before globs, whatever the order they were written in
    assert [r.json()["model"] for r in local.requests] == ["qwen2.5", "qwen-max"]
    assert opus[1]["model"] == "claude-opus-4-1"
    assert "claude-*=qwen2.5" in listing
    assert "claude-*=qwen2.5" in shown


def test_gateway_model_aliases_route_short_and_glob_names(store: ConfigStore) -> None:
    with FakeUpstream() as local, FakeUpstream() as anthropic:
        local_server(local)
        anthropic.respond(answering(Answer(text="from claude")))
        add_account("openai", local.base_url + "/v1", name="local", key=OPENAI_KEY, models="qwen*")
        add_account("anthropic", anthropic.base_url, name="claude", key=ANTHROPIC_KEY)
        set_top(
            store,
            model_aliases={"sonnet": "claude-sonnet-4-5", "claude-haiku-*": "qwen2.5"},
        )
        key = add_gateway_key()
        with running_gateway(store) as (_, port):
            sonnet = call(port, key, "POST", "/v1/messages", claude_code("sonnet"))
            haiku = call(port, key, "POST", "/v1/messages", claude_code("claude-haiku-4-5"))
            listed = call(port, key, "GET", "/v1/models")
            streamed = stream_text(port, key, {**claude_code("sonnet"), "stream": True})
    assert sonnet[0] == 200 and sonnet[1]["model"] == "sonnet"
    assert '"model":"sonnet"' in streamed.replace(" ", "")  # streams too
    assert "claude-sonnet-4-5" not in streamed
    assert sonnet[1]["content"][0]["text"] == "from claude"
    assert anthropic.last().json()["model"] == "claude-sonnet-4-5"
    assert haiku[0] == 200 and haiku[1]["model"] == "claude-haiku-4-5"
    assert local.last().json()["model"] == "qwen2.5"
    assert "sonnet" in [m["id"] for m in listed[1]["data"]]


def test_a_fallback_model_serves_when_every_account_of_the_model_fails(
    store: ConfigStore,
) -> None:
    with FakeUpstream() as opus, FakeUpstream() as sonnet:
        opus.respond(anthropic_error(529, "overloaded_error", "Overloaded"))
        sonnet.respond(answering(Answer(text="sonnet stood in")))
        add_account("anthropic", opus.base_url, name="opus", key=ANTHROPIC_KEY,
                    models="claude-opus-*")  # fmt: skip
        add_account("anthropic", sonnet.base_url, name="sonnet", key=ANTHROPIC_KEY,
                    models="claude-sonnet-*")  # fmt: skip
        set_top(store, fallbacks={"claude-opus-4-1": ["claude-sonnet-4-5"]})
        key = add_gateway_key()
        with running_gateway(store) as (_, port):
            status, body = call(port, key, "POST", "/v1/messages", claude_code("claude-opus-4-1"))
            # a client's own mistake is no reason to fall back
            opus.respond(anthropic_error(400, "invalid_request_error", "bad request"))
            refused = call(port, key, "POST", "/v1/messages", claude_code("claude-opus-4-1"))
    assert status == 200, body
    assert body["model"] == "claude-opus-4-1"
    assert body["content"][0]["text"] == "sonnet stood in"
    assert sonnet.requests[0].json()["model"] == "claude-sonnet-4-5"
    assert refused[0] == 400
    assert len(sonnet.requests) == 1


def test_max_output_tokens_caps_what_an_account_is_asked_for(store: ConfigStore) -> None:
    with FakeUpstream() as local, FakeUpstream() as anthropic:
        local_server(local)
        anthropic.respond(answering(Answer(text="capped")))
        converted = add_account("openai", local.base_url + "/v1", name="local", key=OPENAI_KEY,
                                models="qwen*")  # fmt: skip
        passthrough = add_account("anthropic", anthropic.base_url, name="claude",
                                  key=ANTHROPIC_KEY)  # fmt: skip
        for account in (converted, passthrough):
            assert run_cli("upstream", "update", account, "--max-output-tokens", "4096").code == 0
        shown = run_cli("upstream", "show", converted).out
        key = add_gateway_key()
        with running_gateway(store) as (_, port):
            to_local = call(port, key, "POST", "/v1/messages", claude_code("qwen2.5"))
            to_claude = call(port, key, "POST", "/v1/messages", claude_code("claude-sonnet-4-5"))
            small = call(port, key, "POST", "/v1/messages", claude_code("claude-sonnet-4-5", 100))
    assert to_local[0] == 200 and to_claude[0] == 200 and small[0] == 200
    sent = local.last().json()
    assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 4096
    assert anthropic.requests[0].json()["max_tokens"] == 4096
    assert anthropic.requests[1].json()["max_tokens"] == 100  # under the cap: untouched
    assert to_claude[1]["model"] == "claude-sonnet-4-5"
    assert any(
        line.startswith("max_output_tokens:") and line.endswith("4096")
        for line in shown.splitlines()
    )


def _ids(port: int, key: str) -> dict[str, str]:
    status, body = call(port, key, "GET", "/v1/models")
    assert status == 200, body
    return {m["id"]: m["owned_by"] for m in body["data"]}


def test_v1_models_lists_concrete_names_and_what_glob_only_upstreams_serve(
    store: ConfigStore,
) -> None:
    with FakeUpstream() as local, FakeUpstream() as openai:
        local_server(local, ["qwen2.5", "qwen-max", "llama-3"])
        openai.respond(lambda r: json_reply({"object": "list", "data": [{"id": "gpt-4o"}]}))
        add_account("openai-compatible", local.base_url + "/v1", name="local", key=OPENAI_KEY,
                    models="qwen*", model_map="fast=qwen2.5")  # fmt: skip
        add_account("openai", openai.base_url + "/v1", name="openai", key=OPENAI_KEY,
                    models="gpt-4o-mini,o3")  # fmt: skip
        set_top(store, model_aliases={"sonnet": "qwen-max", "claude-*": "qwen2.5"})
        key = add_gateway_key()
        with running_gateway(store) as (_, port):
            first = _ids(port, key)
            # the upstream's own list arrives in the background, never on the request path
            later: Callable[[], dict[str, str]] = lambda: _ids(port, key)  # noqa: E731
            listed = wait_until(lambda: "qwen2.5" in later() and later(), 10, "the model list")
    assert first == {
        "fast": "openai-compatible",
        "gpt-4o-mini": "openai",
        "o3": "openai",
        "sonnet": "openai-compatible",
    }
    assert listed == {**first, "qwen2.5": "openai-compatible", "qwen-max": "openai-compatible"}
    assert "llama-3" not in listed  # the account's globs do not cover it
    # only the glob-only account's upstream was asked, with its own key
    assert [r.path for r in local.requests] and openai.requests == []
    assert {r.path for r in local.requests} == {"/v1/models"}
    assert local.requests[0].header("authorization") == f"Bearer {OPENAI_KEY}"


def test_an_upstream_error_is_unaffected_by_the_model_catalog(store: ConfigStore) -> None:
    with FakeUpstream() as local:
        local.respond(openai_error(500, "server_error", "no list here"))
        add_account("openai-compatible", local.base_url + "/v1", name="local", key=OPENAI_KEY,
                    models="qwen*")  # fmt: skip
        key = add_gateway_key()
        with running_gateway(store) as (_, port):
            assert _ids(port, key) == {}
            wait_until(lambda: local.requests, 10, "the background model list request")
            assert _ids(port, key) == {}
