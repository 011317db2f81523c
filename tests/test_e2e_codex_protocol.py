"""What Codex does beyond a plain ``POST /v1/responses``, through a running gateway.

* A WebSocket upgrade on ``/v1/responses`` (Codex's built-in OpenAI provider
  tries one first, with ``openai-beta: responses_websockets=...``) is refused
  at once with 426, the status on which Codex falls back to HTTP; any other
  refusal makes it reconnect five times with backoff first.
* Remote compaction (Codex 0.171, its built-in OpenAI provider: ``POST
  /v1/responses`` whose input ends with a ``compaction_trigger`` item, answered
  by exactly one ``compaction`` output item) passes through to an OpenAI account
  untouched; a converted upstream cannot produce OpenAI's opaque compaction item,
  so the request is refused with OpenAI's 400 at once (the README's ``gw``
  provider never asks: Codex compacts with an ordinary summarising turn there).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import exchange, raw_request, run
from fake_upstream import Wired, isolate_environment, json_reply, wired_gateway


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wired]:
    with pytest.MonkeyPatch.context() as patch:
        isolate_environment(patch, tmp_path_factory.mktemp("e2e-codex") / "home")
        with wired_gateway() as setup:
            yield setup


@pytest.fixture
def gw(wired: Wired) -> Wired:
    wired.reset()
    return wired


WEBSOCKET_HEADERS = [
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("openai-beta", "responses_websockets=2026-02-06"),
]


@pytest.mark.parametrize("authorized", [True, False])
def test_a_websocket_upgrade_is_refused_with_426(gw: Wired, authorized: bool) -> None:
    headers = list(WEBSOCKET_HEADERS)
    if authorized:
        headers.append(("authorization", f"Bearer {gw.key}"))
    response = run(exchange(gw.port, raw_request("GET", "/v1/responses", headers=headers)))
    assert response.status == 426
    error = response.json()["error"]
    assert "WebSocket" in error["message"] and error["type"] == "invalid_request_error"
    assert gw.key not in response.body.decode()
    assert not gw.openai_up.requests and not gw.anthropic_up.requests


def test_plain_requests_on_the_same_path_still_work(gw: Wired) -> None:
    headers = [("authorization", f"Bearer {gw.key}")]
    response = run(exchange(gw.port, raw_request("GET", "/v1/responses", headers=headers)))
    assert response.status == 405  # only POST, as before


def compaction_request(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "compaction_trigger"},
        ],
        "store": False,
    }


def post(gw: Wired, body: dict[str, Any]) -> Any:
    headers = [("authorization", f"Bearer {gw.key}"), ("content-type", "application/json")]
    data = json.dumps(body).encode()
    return run(exchange(gw.port, raw_request("POST", "/v1/responses", headers=headers, body=data)))


def test_compaction_passes_through_to_an_openai_account(gw: Wired) -> None:
    item = {"type": "compaction", "id": "cmp_1", "encrypted_content": "opaque-state"}
    answer = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "gpt-4o",
        "output": [item],
        "usage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12},
    }
    gw.openai_up.respond(json_reply(answer))
    response = post(gw, compaction_request("gpt-4o"))
    assert response.status == 200, response.body
    assert response.json()["output"] == [item]
    sent = gw.openai_up.last()
    assert sent.path == "/v1/responses" and sent.json() == compaction_request("gpt-4o")


def test_compaction_for_a_converted_upstream_is_openais_400(gw: Wired) -> None:
    response = post(gw, compaction_request("claude-haiku-4-5"))
    assert response.status == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "compaction_trigger" in error["message"]
    assert not gw.anthropic_up.requests
