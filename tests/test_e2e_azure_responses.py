"""End to end: an Azure account whose chat turns go to Azure's Responses API
(``upstream add/update --provider azure --wire responses``), through the
``openai`` and ``anthropic`` SDKs, to a fake Azure upstream on 127.0.0.1.

Azure serves the Responses API only on its v1 surface: whatever the
account's URL style, the gateway posts to ``/openai/v1/responses`` with the
deployment as the body's ``model``, no api-version, the key in ``api-key``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure_fake import AZURE_UPSTREAM_KEY
from conftest import run_cli
from fake_upstream import (
    Answer,
    FakeUpstream,
    Received,
    add_gateway_key,
    answering,
    anthropic_client,
    isolate_environment,
    openai_client,
    running_gateway,
)

from llm_gateway.config.store import ConfigStore

MODEL, DEPLOYMENT = "gpt-5-pro", "prod-gpt5-pro"
TEXT = "Hello from Azure's Responses API"


def add_account(base_url: str, style: str, *extra: str) -> str:
    args = ["upstream", "add", "--type", "api-key", "--provider", "azure"]
    args += ["--name", "azure-r", "--key", AZURE_UPSTREAM_KEY, "--base-url", base_url]
    args += ["--model-map", f"{MODEL}={DEPLOYMENT}", "--azure-style", style, *extra, "--json"]
    account_id: str = run_cli(*args).json()["id"]
    return account_id


def check(request: Received, key: str) -> None:
    assert (request.method, request.path, request.query) == ("POST", "/openai/v1/responses", "")
    assert request.json()["model"] == DEPLOYMENT
    assert request.header("api-key") == AZURE_UPSTREAM_KEY
    assert request.header("authorization") is None
    assert key not in json.dumps([request.headers, request.path])


@pytest.fixture(params=["deployments", "v1"])
def gateway(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeUpstream, int, str]]:
    isolate_environment(monkeypatch, tmp_path / "home")
    with FakeUpstream() as up:
        add_account(up.base_url, request.param, "--wire", "responses")
        key = add_gateway_key()
        with running_gateway(ConfigStore(tmp_path / "home" / "config.yaml")) as (_, port):
            up.respond(answering(Answer(text=TEXT, input_tokens=9, output_tokens=4)))
            yield up, port, key


def test_chat_and_anthropic_clients_reach_azures_responses_api(
    gateway: tuple[FakeUpstream, int, str],
) -> None:
    up, port, key = gateway
    chat = openai_client(port, key)
    claude = anthropic_client(port, key)
    try:
        completion = chat.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=20
        )
        assert completion.choices[0].message.content == TEXT
        assert completion.model == MODEL
        check(up.last(), key)
        assert up.last().json()["input"][0]["content"][0]["text"] == "hi"
        with claude.messages.stream(
            model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = stream.get_final_message()
        assert [b.text for b in message.content if b.type == "text"] == [TEXT]
        assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 4)
        check(up.last(), key)
        assert up.last().json()["stream"] is True
    finally:
        chat.close()
        claude.close()


def test_a_responses_client_passes_through_with_the_deployment(
    gateway: tuple[FakeUpstream, int, str],
) -> None:
    up, port, key = gateway
    client = openai_client(port, key)
    try:
        body = {"model": MODEL, "input": "hi", "metadata": {"kept": "as sent"}}
        response = client.responses.create(**body)  # type: ignore[call-overload]
        assert response.output_text == TEXT and response.model == MODEL
        check(up.last(), key)
        assert up.last().json()["metadata"] == {"kept": "as sent"}  # untouched
        with client.responses.stream(model=MODEL, input="hi") as stream:
            final = stream.get_final_response()
        assert final.output_text == TEXT
        check(up.last(), key)
    finally:
        client.close()


def test_upstream_update_declares_the_responses_wire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_environment(monkeypatch, tmp_path / "home")
    with FakeUpstream() as up:
        account = add_account(up.base_url, "deployments")
        shown = run_cli("upstream", "update", account, "--wire", "responses", "--json").json()
        assert shown["wire"] == "responses"
        key = add_gateway_key()
        with running_gateway(ConfigStore(tmp_path / "home" / "config.yaml")) as (_, port):
            up.respond(answering(Answer(text=TEXT)))
            client = openai_client(port, key)
            try:
                streamed = client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
                )
                assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == (
                    TEXT
                )
            finally:
                client.close()
            check(up.last(), key)
