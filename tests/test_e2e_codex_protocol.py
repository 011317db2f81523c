"""What Codex does beyond a plain ``POST /v1/responses``, through a running gateway.

* A WebSocket upgrade on ``/v1/responses`` (Codex's built-in OpenAI provider
  tries one first, with ``openai-beta: responses_websockets=...``) is refused
  at once with 426, the status on which Codex falls back to HTTP; any other
  refusal makes it reconnect five times with backoff first.
* Remote compaction (Codex 0.171, its built-in OpenAI provider: ``POST
  /v1/responses`` whose input ends with a ``compaction_trigger`` item, answered
  by exactly one ``compaction`` output item) passes through to an OpenAI account
  untouched. For any other upstream the gateway asks the same upstream for a
  summary and answers with a compaction item carrying it sealed; on later turns
  that item becomes the summary again, and an item the gateway did not make
  for this key is refused. The request is Codex's own, captured
  (``fixtures/codex/responses_request.json``) with the trigger appended, as
  Codex builds it. (The README's ``gw`` provider never asks: Codex compacts
  with an ordinary summarising turn there.)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import exchange, raw_request, run
from fake_upstream import (
    Answer,
    FakeUpstream,
    Wired,
    answering,
    isolate_environment,
    json_reply,
    wired_gateway,
)
from test_e2e_responses import _compatible_account
from test_stream_validators import check_responses

from llm_gateway.formats.responses_compaction import SUMMARY_INSTRUCTION


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wired]:
    with pytest.MonkeyPatch.context() as patch:
        isolate_environment(patch, tmp_path_factory.mktemp("e2e-codex") / "home")
        with wired_gateway(before_start=_compatible_account) as setup:
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
    return post_to(gw.port, gw.key, body)


def post_to(port: int, key: str, body: dict[str, Any]) -> Any:
    headers = [("authorization", f"Bearer {key}"), ("content-type", "application/json")]
    data = json.dumps(body).encode()
    return run(exchange(port, raw_request("POST", "/v1/responses", headers=headers, body=data)))


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


CAPTURED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "codex" / "responses_request.json").read_text()
)["body"]
SUMMARY = "The user asked to run echo hello-from-codex; it printed hello-from-codex."


def codex_compaction(model: str) -> dict[str, Any]:
    """What Codex sends to compact: its last request's history, tools and settings,
    the trigger appended (streamed, nothing stored)."""
    body = copy.deepcopy(CAPTURED)
    body["model"] = model
    body["input"].append({"type": "compaction_trigger"})
    return body


def compacted(gw: Wired, model: str, upstream: FakeUpstream) -> dict[str, Any]:
    """Compact through the gateway; the one compaction item Codex gets."""
    upstream.respond(answering(Answer(text=SUMMARY)))
    response = post(gw, codex_compaction(model))
    assert response.status == 200, response.body
    assert response.header("content-type").startswith("text/event-stream")
    view = check_responses(response.body, model=model)
    assert view.status == "completed" and len(view.items) == 1
    assert view.items[0][0] == "compaction"
    completed = json.loads(response.body.split(b"data: ")[-1])["response"]
    (item,) = completed["output"]
    assert item["type"] == "compaction" and item["id"].startswith("cmp_")
    assert item["encrypted_content"].startswith("llmgw-compaction:")
    assert "hello-from-codex" not in item["encrypted_content"]  # sealed, not readable
    return dict(item)


CONVERTED = {
    "anthropic": ("claude-haiku-4-5", "/v1/messages"),
    "chat": ("compat-model", "/v1/chat/completions"),
}


@pytest.mark.parametrize("upstream", sorted(CONVERTED))
def test_compaction_for_a_converted_upstream_is_a_summary_from_it(gw: Wired, upstream: str) -> None:
    model, path = CONVERTED[upstream]
    up = gw.anthropic_up if upstream == "anthropic" else gw.openai_up
    item = compacted(gw, model, up)
    sent = up.last()
    assert sent.path == path and not sent.stream
    request = sent.json()
    text = json.dumps(request)
    assert "compaction_trigger" not in text and "hello-from-codex" in text  # the history
    last = request["messages"][-1]
    assert last["role"] == "user" and SUMMARY_INSTRUCTION in json.dumps(last)
    assert request["tool_choice"] in ({"type": "none"}, "none")  # tools kept, not called

    # the next turn: Codex's history is its user messages and the item, then a new one
    up.respond(answering(Answer(text="Continuing.")))
    follow = {
        "model": model,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
            item,
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "b"}]},
        ],
        "store": False,
    }
    response = post(gw, follow)
    assert response.status == 200, response.body
    messages = json.dumps(up.last().json()["messages"])
    assert SUMMARY in messages and "written when its history was compacted" in messages


def test_a_compaction_item_the_gateway_did_not_make_is_refused(gw: Wired) -> None:
    item = compacted(gw, "claude-haiku-4-5", gw.anthropic_up)
    gw.anthropic_up.reset()
    sealed = item["encrypted_content"]
    forged = [
        "llmgw-compaction:" + "A" * 80,  # made up
        sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"),  # altered
    ]
    for content in forged:
        body = {
            "model": "claude-haiku-4-5",
            "input": [
                {**item, "encrypted_content": content},
                {"type": "message", "role": "user", "content": "go on"},
            ],
        }
        response = post(gw, body)
        assert response.status == 400, response.body
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == "input"
    assert not gw.anthropic_up.requests


def test_a_compaction_not_streamed_is_the_item_in_json(gw: Wired) -> None:
    gw.anthropic_up.respond(answering(Answer(text=SUMMARY)))
    body = {**codex_compaction("claude-haiku-4-5"), "stream": False}
    response = post(gw, body)
    assert response.status == 200, response.body
    answer = response.json()
    assert answer["object"] == "response" and answer["status"] == "completed"
    assert [i["type"] for i in answer["output"]] == ["compaction"]
    assert answer["usage"]["output_tokens"] == Answer().output_tokens


def test_compaction_for_gemini_and_azure_chat_upstreams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same compaction, summarised by a Gemini upstream and by an Azure
    account on its chat API (each in its own format), then expanded."""
    from azure_fake import AZURE_UPSTREAM_KEY, answering_azure
    from conftest import run_cli
    from fake_upstream import add_account, add_gateway_key, running_gateway
    from gemini_fake import GEMINI_UPSTREAM_KEY, answering_gemini

    from llm_gateway.config.store import ConfigStore

    isolate_environment(monkeypatch, tmp_path / "home")
    with FakeUpstream() as gemini, FakeUpstream() as azure:
        add_account("gemini", gemini.base_url + "/v1beta", name="g", key=GEMINI_UPSTREAM_KEY)
        run_cli(
            "upstream", "add", "--type", "api-key", "--provider", "azure", "--name", "az",
            "--key", AZURE_UPSTREAM_KEY, "--base-url", azure.base_url,
            "--model-map", "gpt-4.1=prod-41", "--azure-style", "v1", "--json",
        )  # fmt: skip
        key = add_gateway_key()
        with running_gateway(ConfigStore(tmp_path / "home" / "config.yaml")) as (_, port):
            cases = [
                ("gemini-2.5-pro", gemini, answering_gemini, ":generateContent"),
                ("gpt-4.1", azure, answering_azure, "/openai/v1/chat/completions"),
            ]
            for model, up, answering_as, path in cases:
                up.respond(answering_as(Answer(text=SUMMARY)))
                response = post_to(port, key, codex_compaction(model))
                assert response.status == 200, response.body
                (item,) = json.loads(response.body.split(b"data: ")[-1])["response"]["output"]
                assert item["encrypted_content"].startswith("llmgw-compaction:")
                assert up.last().path.endswith(path)
                assert SUMMARY_INSTRUCTION in json.dumps(up.last().json())
                up.respond(answering_as(Answer(text="Continuing.")))
                follow = {"model": model, "input": [item, {"role": "user", "content": "go on"}]}
                assert post_to(port, key, follow).status == 200
                assert SUMMARY in json.dumps(up.last().json())
