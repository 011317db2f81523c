"""End to end, what guards a request and its answer on the way through the gateway.

Before any upstream call: the shape every request of the client's format must
have (model, messages and roles, prompt, max_tokens, stream, tools), and no
top-level key given twice; a bad request gets a 400 in the client's format
naming the field, and the upstream sees nothing. On the way back: no error
body or stream error event carries the account's credential (in any form) or
anything key-shaped, in every client format, passed through or converted;
response ids keep the client format's style whatever the upstream; every
response an account served names it in ``x-llm-gateway-account``.

The accounts' keys here are deliberately not ``sk-``-shaped, so only the
gateway's knowledge of the account's own key can mask them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import exchange, raw_request, run, wait_until
from fake_upstream import (
    SAFETY,
    Answer,
    FakeUpstream,
    Gate,
    Received,
    Reply,
    Stream,
    add_account,
    add_gateway_key,
    answering,
    anthropic_error,
    anthropic_events,
    anthropic_message,
    isolate_environment,
    json_reply,
    openai_chat_events,
    openai_error,
    running_gateway,
    sse,
)

from llm_gateway.config.store import ConfigStore

OPENAI_KEY = "oai-live-7f3Kq9Zx2LmN8pR4tV6w+/Yb"
ANTHROPIC_KEY = "ant-live-Q2w9Er7Ty4Ui1Op0As8Df"
CLAUDE, GPT = "claude-haiku-4-5", "gpt-4o"


@dataclass
class Guarded:
    port: int
    key: str
    openai_up: FakeUpstream
    anthropic_up: FakeUpstream
    gateway: Any

    def post(self, path: str, body: bytes | dict[str, Any]) -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = raw_request(
            "POST",
            path,
            headers=[("Authorization", f"Bearer {self.key}"), ("Content-Type", "application/json")],
            body=data,
        )
        return run(exchange(self.port, request))

    def upstream_requests(self) -> int:
        return len(self.openai_up.requests) + len(self.anthropic_up.requests)


@contextlib.contextmanager
def guarded(home: Path, proxy_settings: dict[str, Any] | None = None) -> Iterator[Guarded]:
    with pytest.MonkeyPatch.context() as patch:
        isolate_environment(patch, home)
        with FakeUpstream() as openai_up, FakeUpstream() as anthropic_up:
            add_account("openai", openai_up.base_url + "/v1", name="openai-main", key=OPENAI_KEY)
            add_account(
                "anthropic", anthropic_up.base_url, name="anthropic-main", key=ANTHROPIC_KEY
            )
            key = add_gateway_key()
            store = ConfigStore(Path(home) / "config.yaml")
            if proxy_settings:
                store.update(lambda doc: doc.setdefault("proxy", {}).update(proxy_settings))
            with running_gateway(store) as (gateway, port):
                yield Guarded(port, key, openai_up, anthropic_up, gateway)


@pytest.fixture(scope="module")
def guarded_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    with guarded(tmp_path_factory.mktemp("guard") / "home") as setup:
        yield setup


@pytest.fixture
def gw(guarded_gateway: Guarded) -> Guarded:
    for up in (guarded_gateway.openai_up, guarded_gateway.anthropic_up):
        up.reset()
        up.respond(answering(Answer(text="fine")))
    return guarded_gateway


def chat(model: str = GPT, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def completion(model: str = GPT, **extra: Any) -> dict[str, Any]:
    return {"model": model, "prompt": "Say hi", **extra}


def message(model: str = CLAUDE, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def error_param(response: Any) -> str | None:
    """The field a 400 names: OpenAI's ``param``, or the quoted name in an Anthropic message."""
    body = response.json()
    if body.get("type") == "error":  # Anthropic
        assert body["error"]["type"] == "invalid_request_error"
        text: str = body["error"]["message"]
        return text.split("'")[1] if "'" in text else None
    assert body["error"]["type"] == "invalid_request_error"
    param: str | None = body["error"]["param"]
    return param


# --- the request's shape, before any upstream call --------------------------------------

CHAT_PATH, COMPLETIONS_PATH, MESSAGES_PATH = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/messages",
)
COUNT_PATH = "/v1/messages/count_tokens"


def _without(body: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != field}


INVALID = [
    # passthrough (the account speaks the client's format) and converted alike
    (CHAT_PATH, _without(chat(), "messages"), "messages"),
    (CHAT_PATH, chat(messages={"role": "user", "content": "hi"}), "messages"),
    (CHAT_PATH, chat(messages=[]), "messages"),
    (CHAT_PATH, chat(messages=["hi"]), "messages[0]"),
    (CHAT_PATH, chat(messages=[{"role": "wizard", "content": "hi"}]), "messages[0].role"),
    (CHAT_PATH, chat(model=""), "model"),
    (CHAT_PATH, chat(model=7), "model"),
    (CHAT_PATH, chat(stream="yes"), "stream"),
    (CHAT_PATH, chat(tools={"type": "function"}), "tools"),
    (CHAT_PATH, chat(max_tokens=0), "max_tokens"),
    (CHAT_PATH, chat(max_completion_tokens="10"), "max_completion_tokens"),
    (CHAT_PATH, chat(CLAUDE, messages="hi"), "messages"),
    (COMPLETIONS_PATH, _without(completion(), "prompt"), "prompt"),
    (COMPLETIONS_PATH, completion(prompt={"text": "hi"}), "prompt"),
    (COMPLETIONS_PATH, completion(prompt=[]), "prompt"),
    (COMPLETIONS_PATH, completion(max_tokens=-1), "max_tokens"),
    (COMPLETIONS_PATH, completion(CLAUDE, prompt=None), "prompt"),
    (MESSAGES_PATH, _without(message(), "messages"), "messages"),
    (MESSAGES_PATH, message(messages={"role": "user"}), "messages"),
    (MESSAGES_PATH, message(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
    (MESSAGES_PATH, _without(message(), "max_tokens"), "max_tokens"),
    (MESSAGES_PATH, message(max_tokens=True), "max_tokens"),
    (MESSAGES_PATH, message(max_tokens=1.5), "max_tokens"),
    (MESSAGES_PATH, message(stream=1), "stream"),
    (MESSAGES_PATH, message(tools="search"), "tools"),
    (MESSAGES_PATH, message(GPT, messages=[]), "messages"),
    (COUNT_PATH, _without(message(), "messages"), "messages"),
    (COUNT_PATH, message(messages=[{"content": "no role"}]), "messages[0].role"),
]


@pytest.mark.parametrize(("path", "body", "field"), INVALID)
def test_an_invalid_request_never_reaches_the_upstream(
    gw: Guarded, path: str, body: dict[str, Any], field: str
) -> None:
    response = gw.post(path, body)
    assert response.status == 400, response.body
    assert error_param(response) == field
    assert gw.upstream_requests() == 0


def test_count_tokens_needs_no_max_tokens_and_passthrough_sends_the_clients_bytes(
    gw: Guarded,
) -> None:
    gw.anthropic_up.respond(json_reply({"input_tokens": 5}))
    assert gw.post(COUNT_PATH, _without(message(), "max_tokens")).status == 200
    odd = b'{ "model" :"gpt-4o",\n "messages":[{"role":"user","content":"hi \\u00e9"}] }'
    assert gw.post(CHAT_PATH, odd).status == 200
    assert gw.openai_up.last().body == odd


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT_PATH, b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], '),
        (MESSAGES_PATH, b'{"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [], '),
    ],
)
def test_a_top_level_key_given_twice_is_refused(gw: Guarded, path: str, body: bytes) -> None:
    twice = body + b'"model": "forbidden"}'
    response = gw.post(path, twice)
    assert response.status == 400, response.body
    assert error_param(response) == "model"
    assert gw.upstream_requests() == 0
    # nested objects are the upstream's to judge: a repeated key there is no reason to refuse
    nested = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "a", "content": "b"}]}'
    assert gw.post(CHAT_PATH, nested).status == 200


# --- no credential in what comes back ---------------------------------------------------


def _echoes(key: str) -> str:
    """An upstream error text that echoes the key it was sent, in several forms."""
    return (
        f"Incorrect API key provided: {key}. Header was 'Bearer {key}', "
        f"basic {base64.b64encode(key.encode()).decode()}, url {quote(key, safe='')}; "
        "also sk-proj-AbCdEf0123456789xyz and Bearer abc.DEF-ghi_012345"
    )


def _forms(key: str) -> list[str]:
    return [key, base64.b64encode(key.encode()).decode().rstrip("="), quote(key, safe="")]


_LEAKS = [*_forms(OPENAI_KEY), *_forms(ANTHROPIC_KEY), "AbCdEf0123456789xyz", "DEF-ghi_012345"]


def _error_reply(provider: str, stream: bool) -> Reply:
    """What an upstream echoing its key answers: a 400, or a stream's error event."""
    if provider == "openai":
        text = _echoes(OPENAI_KEY)
        if not stream:
            return openai_error(400, "invalid_request_error", text)
        events = openai_chat_events(Answer(text="partial"), GPT, False)[:2]
        return Stream([*events, sse({"error": {"message": text, "type": "server_error"}})])
    text = _echoes(ANTHROPIC_KEY)
    if not stream:
        return anthropic_error(400, "invalid_request_error", text)
    events = anthropic_events(Answer(text="partial"), CLAUDE)[:3]
    error = {"type": "error", "error": {"type": "overloaded_error", "message": text}}
    return Stream([*events, sse(error, "error")])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(
    ("path", "body", "provider"),
    [
        (CHAT_PATH, chat(), "openai"),  # passthrough
        (CHAT_PATH, chat(CLAUDE), "anthropic"),  # converted
        (COMPLETIONS_PATH, completion(), "openai"),
        (COMPLETIONS_PATH, completion(CLAUDE), "anthropic"),
        (MESSAGES_PATH, message(), "anthropic"),
        (MESSAGES_PATH, message(GPT), "openai"),
    ],
    ids=[
        "chat-passthrough",
        "chat-converted",
        "completions-passthrough",
        "completions-converted",
        "messages-passthrough",
        "messages-converted",
    ],
)
def test_an_upstream_error_never_shows_the_accounts_key(
    gw: Guarded, path: str, body: dict[str, Any], provider: str, stream: bool
) -> None:
    upstream = gw.openai_up if provider == "openai" else gw.anthropic_up
    upstream.respond(_error_reply(provider, stream))
    response = gw.post(path, {**body, "stream": stream})
    text = response.body.decode()
    assert "Incorrect API key provided" in text, text  # the message itself still reaches the client
    for leak in _LEAKS:
        assert leak not in text
    if stream:
        assert response.status == 200 and b"error" in response.body
    else:
        assert response.status == 400


def test_health_shows_no_secret(gw: Guarded) -> None:
    response = run(exchange(gw.port, raw_request("GET", "/health")))
    assert response.status == 200
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, gw.key, gw.key.rsplit("-", 1)[-1]):
        assert secret not in response.body.decode()


# --- response ids in the client format's style --------------------------------------------


def _odd_ids(request: Received) -> Reply:
    """An OpenAI-compatible server with ids of its own style."""
    model = request.json()["model"]
    if request.stream:
        events = openai_chat_events(Answer(text="Hello there"), model, False)
        return Stream([e.replace(b'"chatcmpl-', b'"local-') for e in events])
    reply = answering(Answer(text="Hello there"))(request)
    assert not isinstance(reply, Stream)
    return json_reply({**json.loads(reply.body), "id": "local-42"})


def _stream_ids(data: bytes) -> set[str]:
    ids = set()
    for line in data.split(b"\n"):
        if line.startswith(b"data: {"):
            chunk = json.loads(line[6:])
            found = chunk.get("id") or chunk.get("message", {}).get("id")
            if found:
                ids.add(found)
    return ids


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_response_ids_keep_the_client_formats_style(gw: Guarded, stream: bool) -> None:
    gw.openai_up.respond(_odd_ids)
    chat_answer = gw.post(CHAT_PATH, chat(stream=stream))
    messages_answer = gw.post(MESSAGES_PATH, message(GPT, stream=stream))
    gw.openai_up.respond(answering(Answer(text="Hi")))
    completions_answer = gw.post(COMPLETIONS_PATH, completion(CLAUDE, stream=stream))
    for response, prefix in [
        (chat_answer, "chatcmpl-"),
        (messages_answer, "msg_"),
        (completions_answer, "cmpl-"),
    ]:
        assert response.status == 200, response.body
        ids = _stream_ids(response.body) if stream else {response.json()["id"]}
        assert len(ids) == 1, ids
        assert ids.pop().startswith(prefix)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_id_already_in_style_is_kept(gw: Guarded, stream: bool) -> None:
    passed = gw.post(MESSAGES_PATH, message(stream=stream))
    assert (_stream_ids(passed.body) if stream else {passed.json()["id"]}) == {"msg_fake01"}
    converted = gw.post(MESSAGES_PATH, message(GPT, stream=stream))
    assert (_stream_ids(converted.body) if stream else {converted.json()["id"]}) == {"msg_fake01"}


# --- who served it ------------------------------------------------------------------------


def test_every_response_names_the_account_that_served_it(gw: Guarded) -> None:
    assert gw.post(CHAT_PATH, chat()).header("x-llm-gateway-account") == "openai-main"
    streamed = gw.post(MESSAGES_PATH, message(stream=True))
    assert streamed.header("x-llm-gateway-account") == "anthropic-main"
    gw.anthropic_up.respond(anthropic_error(400, "invalid_request_error", "bad image"))
    refused = gw.post(CHAT_PATH, chat(CLAUDE))
    assert refused.status == 400
    assert refused.header("x-llm-gateway-account") == "anthropic-main"
    # the gateway's own refusal, before an account was chosen, names none
    assert gw.post(CHAT_PATH, chat(messages=[])).header("x-llm-gateway-account") is None
    assert gw.post(CHAT_PATH, chat("no-such-model")).header("x-llm-gateway-account") is None


# --- large requests wait for the memory budget ---------------------------------------------


def test_large_requests_beyond_the_memory_budget_wait_their_turn(tmp_path: Path) -> None:
    """With room for one large request, a second waits (before it is parsed or sent)
    until the first is answered; both then succeed."""
    with guarded(tmp_path / "home", {"large_request_memory": 1 << 20}) as gw:
        gate = Gate(timeout=SAFETY * 3)

        def answer(request: Received) -> Reply:
            body = json.dumps(anthropic_message(Answer(text="done"), CLAUDE)).encode()
            held = [gate, body] if len(gw.anthropic_up.requests) == 1 else [body]
            return Stream(held, headers=(("content-type", "application/json"),))

        gw.anthropic_up.respond(answer)
        big = chat(CLAUDE, messages=[{"role": "user", "content": "x" * 100}] * 12_000)
        statuses: list[int] = []

        def send() -> None:
            statuses.append(gw.post(CHAT_PATH, big).status)

        senders = [threading.Thread(target=send) for _ in range(2)]
        for sender in senders:
            sender.start()
        memory = gw.gateway.proxy.memory
        wait_until(
            lambda: memory._waiting and gw.anthropic_up.requests,
            SAFETY,
            "the first large request upstream and the second waiting",
        )
        assert len(gw.anthropic_up.requests) == 1  # the first holds the budget
        gate.open()
        for sender in senders:
            sender.join(SAFETY * 3)
        assert statuses == [200, 200]
        assert len(gw.anthropic_up.requests) == 2
        assert memory.in_use == 0
