"""End to end: the official ``google-genai`` SDK through the gateway's Gemini API
(``/v1beta/models/{model}:...``) to fake OpenAI, Anthropic and Gemini upstreams.

Each test checks what the SDK got (its own types and error classes) and what
the upstream received: the converted body for OpenAI and Anthropic accounts,
the client's bytes untouched for a Gemini account, and the gateway key
nowhere upstream. Tool tests run two turns: the ids (and, from Anthropic, the
thinking signature) the SDK got come back in the second request and reach
the upstream as it made them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import connect, exchange, raw_request, read_chunk, read_head
from fake_upstream import (
    ANTHROPIC_UPSTREAM_KEY,
    OPENAI_UPSTREAM_KEY,
    THINKING_SIGNATURE,
    Answer,
    FakeUpstream,
    Gate,
    Received,
    Reply,
    Stream,
    ToolCall,
    Wired,
    add_account,
    answering,
    anthropic_error,
    isolate_environment,
    json_reply,
    openai_chat_events,
    openai_error,
    wired_gateway,
)
from gemini_fake import (
    GEMINI_UPSTREAM_KEY,
    THOUGHT_SIGNATURE,
    answering_gemini,
    gemini_error,
    gemini_events,
)

genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402
from google.genai import types  # noqa: E402

GEMINI_MODEL = "gemini-2.5-flash"
#: the model each upstream serves, by provider
MODELS = {"openai": "gpt-4o", "anthropic": "claude-haiku-4-5", "gemini": GEMINI_MODEL}
TEXT = "Hello there from the fake upstream"
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather in a city",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        )
    ]
)


class Setup:
    def __init__(self, wired: Wired, gemini_up: FakeUpstream) -> None:
        self.wired, self.gemini_up = wired, gemini_up
        self.key, self.port = wired.key, wired.port
        #: SDK clients handed out (a client closes its connections when collected)
        self.clients: list[Any] = []

    def up(self, provider: str) -> FakeUpstream:
        return self.gemini_up if provider == "gemini" else self.wired.upstream(provider)

    def client(self, key: str | None = None) -> Any:
        self.clients.append(self._client(key))
        return self.clients[-1]

    def _client(self, key: str | None) -> Any:
        return genai.Client(
            api_key=key or self.key,
            http_options=types.HttpOptions(
                base_url=f"http://127.0.0.1:{self.port}",
                api_version="v1beta",
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    def headers(self) -> list[tuple[str, str]]:
        return [("Content-Type", "application/json"), ("x-goog-api-key", self.key)]

    def answer(self, provider: str, answer: Answer) -> None:
        up = self.up(provider)
        up.reset()
        up.respond(answering_gemini(answer) if provider == "gemini" else answering(answer))

    def secrets_kept(self) -> None:
        """The gateway key never went upstream; each upstream got its own key."""
        for provider in MODELS:
            for request in self.up(provider).requests:
                seen = json.dumps([request.headers, request.path, request.query])
                seen += request.body.decode("utf-8", "replace")
                assert self.key not in seen
                assert "key=" not in request.query
        for request in self.gemini_up.requests:
            assert request.header("x-goog-api-key") == GEMINI_UPSTREAM_KEY


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    monkeypatch = pytest.MonkeyPatch()
    isolate_environment(monkeypatch, tmp_path_factory.mktemp("gemini-client") / "home")
    with FakeUpstream() as gemini_up:

        def gemini_account() -> None:
            add_account(
                "gemini",
                gemini_up.base_url + "/v1beta",
                name="gemini-main",
                key=GEMINI_UPSTREAM_KEY,
                model_map="gem-alias=gemini-2.5-pro",
            )

        try:
            with wired_gateway(before_start=gemini_account) as wired:
                yield Setup(wired, gemini_up)
        finally:
            monkeypatch.undo()


@pytest.fixture
def gw(setup: Setup) -> Iterator[Setup]:
    setup.wired.reset()
    setup.gemini_up.reset()
    yield setup
    while setup.clients:
        setup.clients.pop().close()
    gateway = setup.wired.gateway
    for account in gateway.state.config.upstream_accounts:  # 429s and 500s forgotten
        gateway.health.forget(account.id)


# --- text, system instruction, streams ---------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_text_with_a_system_instruction(gw: Setup, provider: str) -> None:
    gw.answer(provider, Answer(text=TEXT, input_tokens=12, output_tokens=5))
    response = gw.client().models.generate_content(
        model=MODELS[provider],
        contents="Say hello",
        config=types.GenerateContentConfig(
            system_instruction="Be brief.", temperature=0.5, max_output_tokens=50
        ),
    )
    assert response.text == TEXT
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (12, 5)
    sent = gw.up(provider).last()
    if provider == "openai":
        assert sent.path == "/v1/chat/completions"
        assert sent.json()["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ]
        assert sent.header("authorization") == f"Bearer {OPENAI_UPSTREAM_KEY}"
    elif provider == "anthropic":
        assert sent.path == "/v1/messages"
        body = sent.json()
        assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
        assert body["max_tokens"] == 50
        assert sent.header("x-api-key") == ANTHROPIC_UPSTREAM_KEY
    else:
        assert sent.path == f"/v1beta/models/{GEMINI_MODEL}:generateContent"
        assert sent.json()["systemInstruction"]["parts"] == [{"text": "Be brief."}]
        assert "model" not in sent.json()
    gw.secrets_kept()


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_stream(gw: Setup, provider: str) -> None:
    gw.answer(provider, Answer(text=TEXT, input_tokens=9, output_tokens=4))
    chunks = list(
        gw.client().models.generate_content_stream(
            model=MODELS[provider],
            contents="Say hello",
            config=types.GenerateContentConfig(system_instruction="Be brief."),
        )
    )
    assert len(chunks) > 2
    assert "".join(c.text or "" for c in chunks) == TEXT
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    usage = chunks[-1].usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (9, 4)
    sent = gw.up(provider).last()
    assert sent.stream or provider == "gemini"
    if provider == "gemini":
        assert sent.path == f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent"
        assert sent.query == "alt=sse"
    else:
        assert sent.query == ""  # neither the key nor alt=sse is forwarded
    gw.secrets_kept()


def test_same_format_passes_the_body_through_untouched_and_renames_only_the_path(
    gw: Setup,
) -> None:
    gw.answer("gemini", Answer(text=TEXT))
    client = gw.client()
    response = client.models.generate_content(
        model="gem-alias",
        contents="Say hello",
        config=types.GenerateContentConfig(
            safety_settings=[
                types.SafetySetting(
                    category=types.HarmCategory.HARM_CATEGORY_HATE_SPEECH,
                    threshold=types.HarmBlockThreshold.BLOCK_ONLY_HIGH,
                )
            ]
        ),
    )
    assert response.text == TEXT
    assert response.model_version == "gem-alias"  # the name the client asked for
    sent = gw.gemini_up.last()
    assert sent.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    body = sent.json()
    assert "model" not in body
    assert body["safetySettings"] == [
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}
    ]
    # the bytes are the client's own: sent again raw, they arrive unchanged
    raw = b'{"contents": [{"role": "user", "parts": [{"text": "x"}]}], "cachedContent": "c/1"}'
    result = post(gw, f"/v1beta/models/{GEMINI_MODEL}:generateContent", raw)
    assert result.status == 200
    assert gw.gemini_up.last().body == raw
    gw.secrets_kept()


# --- function calling, two turns ---------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_function_calling_with_a_second_turn(gw: Setup, provider: str) -> None:
    calls = (
        ToolCall("call_up1", "get_weather", {"city": "Paris"}),
        ToolCall("call_up2", "get_weather", {"city": "Tokyo"}),
    )
    gw.answer(provider, Answer(tool_calls=calls))
    client = gw.client()
    config = types.GenerateContentConfig(
        tools=[WEATHER],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    question = types.Content(role="user", parts=[types.Part(text="Weather in Paris and Tokyo?")])
    first = client.models.generate_content(
        model=MODELS[provider], contents=[question], config=config
    )
    got = first.function_calls
    assert [(c.name, c.args) for c in got] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    if provider != "gemini":  # Gemini 2.5 gives no ids; other upstreams' ids come through
        assert [c.id for c in got] == ["call_up1", "call_up2"]

    gw.answer(provider, Answer(text="Sunny and rainy."))
    answers = types.Content(
        role="user",
        parts=[
            types.Part(
                function_response=types.FunctionResponse(
                    id=call.id, name=call.name, response={"output": weather}
                )
            )
            for call, weather in zip(got, ("sunny", "rainy"), strict=True)
        ],
    )
    second = client.models.generate_content(
        model=MODELS[provider],
        contents=[question, first.candidates[0].content, answers],
        config=config,
    )
    assert second.text == "Sunny and rainy."
    body = gw.up(provider).last().json()
    if provider == "openai":
        (assistant, *results) = body["messages"][1:]
        ids = [c["id"] for c in assistant["tool_calls"]]
        assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["get_weather"] * 2
        assert [(r["role"], r["tool_call_id"], r["content"]) for r in results] == [
            ("tool", ids[0], "sunny"),
            ("tool", ids[1], "rainy"),
        ]
        assert ids[0] != ids[1]
    elif provider == "anthropic":
        (assistant, results) = body["messages"][1:]
        uses = [b for b in assistant["content"] if b["type"] == "tool_use"]
        assert [b["input"] for b in uses] == [{"city": "Paris"}, {"city": "Tokyo"}]
        assert [(b["type"], b["tool_use_id"]) for b in results["content"]] == [
            ("tool_result", uses[0]["id"]),
            ("tool_result", uses[1]["id"]),
        ]
    else:
        assert body["contents"][1] == {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": THOUGHT_SIGNATURE,
                },
                {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}},
            ],
        }
    gw.secrets_kept()


def test_an_anthropic_thinking_signature_comes_back_through_the_gemini_client(
    gw: Setup,
) -> None:
    calls = (ToolCall("toolu_01A", "get_weather", {"city": "Paris"}),)
    gw.answer("anthropic", Answer(reasoning="Look it up.", tool_calls=calls))
    client = gw.client()
    config = types.GenerateContentConfig(
        tools=[WEATHER],
        thinking_config=types.ThinkingConfig(thinking_budget=2048, include_thoughts=True),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    question = types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])
    chunks = list(
        client.models.generate_content_stream(
            model=MODELS["anthropic"], contents=[question], config=config
        )
    )
    parts = [p for c in chunks for p in c.candidates[0].content.parts or []]
    thoughts = [p for p in parts if p.thought]
    assert "".join(p.text or "" for p in thoughts) == "Look it up."
    signed = [p for p in thoughts if p.thought_signature]
    assert len(signed) == 1
    (call,) = [p.function_call for p in parts if p.function_call]
    assert (call.id, call.name, call.args) == ("toolu_01A", "get_weather", {"city": "Paris"})

    gw.answer("anthropic", Answer(text="Sunny."))
    history = types.Content(
        role="model",
        parts=[
            types.Part(
                text="Look it up.", thought=True, thought_signature=signed[0].thought_signature
            ),
            types.Part(function_call=call),
        ],
    )
    answer = types.Content(
        role="user",
        parts=[
            types.Part(
                function_response=types.FunctionResponse(
                    id=call.id, name=call.name, response={"output": "sunny"}
                )
            )
        ],
    )
    second = client.models.generate_content(
        model=MODELS["anthropic"], contents=[question, history, answer], config=config
    )
    assert second.text == "Sunny."
    assistant = gw.up("anthropic").last().json()["messages"][1]
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "Look it up.",
        "signature": THINKING_SIGNATURE,
    }
    assert assistant["content"][1]["type"] == "tool_use"


# --- count_tokens --------------------------------------------------------------------------


def counting_anthropic(tokens: int) -> Any:
    def handler(request: Received) -> Reply:
        assert request.path == "/v1/messages/count_tokens"
        return json_reply({"input_tokens": tokens})

    return handler


def test_count_tokens_are_asked_of_another_formats_counter(gw: Setup) -> None:
    """An Anthropic account counts with its own ``count_tokens``: the Gemini client's
    request is converted for it, and the count comes back in Google's shape."""
    gw.up("anthropic").respond(counting_anthropic(321))
    counted = gw.client().models.count_tokens(
        model=MODELS["anthropic"], contents="How many tokens is this?"
    )
    assert counted.total_tokens == 321
    assert "x-llm-gateway-estimate" not in counted.sdk_http_response.headers
    sent = gw.up("anthropic").last().json()
    assert (
        sent["messages"] == [{"role": "user", "content": "How many tokens is this?"}]
        or sent["messages"][0]["role"] == "user"
    )
    assert "max_tokens" not in sent


def test_count_tokens_estimated_where_no_counter_exists(gw: Setup) -> None:
    """An upstream without the counter endpoint (404) gets the marked local estimate."""
    gw.up("openai").respond(json_reply({"error": {"message": "not found"}}, status=404))
    text = "word " * 400
    counted = gw.client().models.count_tokens(model=MODELS["openai"], contents=text)
    assert counted.total_tokens >= 400
    assert counted.sdk_http_response.headers["x-llm-gateway-estimate"] == "true"
    assert [r.path for r in gw.up("openai").requests] == ["/v1/responses/input_tokens"]


# --- errors in Google's shape: the SDK's own classes ------------------------------------------


@pytest.mark.parametrize(
    ("provider", "reply"),
    [
        ("openai", openai_error(429, "rate_limit_exceeded", "Rate limit reached for gpt-4o")),
        ("anthropic", anthropic_error(429, "rate_limit_error", "Rate limit reached for gpt-4o")),
        ("gemini", gemini_error(429, "Rate limit reached for gpt-4o")),
    ],
)
def test_a_429_is_the_sdks_client_error(gw: Setup, provider: str, reply: Any) -> None:
    gw.up(provider).respond(reply)
    with pytest.raises(genai_errors.ClientError) as caught:
        gw.client().models.generate_content(model=MODELS[provider], contents="hi")
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    assert "Rate limit reached" in (caught.value.message or "")


@pytest.mark.parametrize(
    ("provider", "reply"),
    [
        ("openai", openai_error(500, "server_error", "The server had an error")),
        ("anthropic", anthropic_error(500, "api_error", "The server had an error")),
        ("gemini", gemini_error(500, "The server had an error")),
    ],
)
def test_a_500_is_the_sdks_server_error(gw: Setup, provider: str, reply: Any) -> None:
    gw.up(provider).respond(reply)
    with pytest.raises(genai_errors.ServerError) as caught:
        list(gw.client().models.generate_content_stream(model=MODELS[provider], contents="hi"))
    assert caught.value.code == 500
    assert caught.value.status == "INTERNAL"


def test_the_gateways_own_errors_are_googles_shape(gw: Setup) -> None:
    with pytest.raises(genai_errors.ClientError) as caught:
        gw.client(key="not-a-gateway-key").models.generate_content(model="gpt-4o", contents="hi")
    assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")
    with pytest.raises(genai_errors.ClientError) as caught:
        gw.client().models.generate_content(model="no-such-model", contents="hi")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    with pytest.raises(genai_errors.ClientError) as caught:
        gw.client().models.get(model="no-such-model")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    for body, status in (
        (b"{not json", 400),
        (b'{"contents": []}', 400),
        (b'{"contents": [{"role": "system", "parts": [{"text": "x"}]}]}', 400),
    ):
        result = post(gw, "/v1beta/models/gpt-4o:generateContent", body)
        assert result.status == status
        error = result.json()["error"]
        assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
        assert error["message"]
    result = post(gw, "/v1beta/models/gpt-4o:embedContent", b"{}")
    assert result.status == 404
    assert result.json()["error"]["status"] == "NOT_FOUND"
    result = get(gw, "/v1beta/models/gpt-4o:generateContent")
    assert result.status == 405
    assert result.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert result.header("allow") == "POST"


def test_a_body_over_the_limit_is_a_413_in_googles_shape(gw: Setup) -> None:
    gw.wired.store.update(lambda d: d["server"].update(max_body_bytes=2048))
    try:
        from conftest import wait_until

        wait_until(
            lambda: gw.wired.gateway.state.config.server.max_body_bytes == 2048, 10, "reload"
        )
        body = json.dumps({"contents": [{"parts": [{"text": "x" * 4096}]}]}).encode()
        result = post(gw, "/v1beta/models/gpt-4o:generateContent", body)
    finally:
        gw.wired.store.update(lambda d: d["server"].pop("max_body_bytes", None))
    assert result.status == 413
    error = json.loads(result.body)["error"]
    assert error["code"] == 413 and error["status"] == "INVALID_ARGUMENT"


# --- the key in the query, the JSON-array stream, the model list ------------------------------


def test_a_key_in_the_query_is_accepted_and_neither_logged_nor_forwarded(
    gw: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="llm_gateway")
    for provider in ("anthropic", "gemini"):
        gw.answer(provider, Answer(text=TEXT))
        path = f"/v1beta/models/{MODELS[provider]}:streamGenerateContent?alt=sse&key={gw.key}"
        body = b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'
        result = post(gw, path, body, key=None)
        assert result.status == 200, result.body
        assert b"data: " in result.body and TEXT.split()[0].encode() in result.body
        assert gw.up(provider).last().query in ("", "alt=sse")
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "request" in logged and "/v1beta/models/" in logged
    assert gw.key not in logged
    gw.secrets_kept()
    result = post(gw, "/v1beta/models/gpt-4o:generateContent?key=wrong", b"{}", key=None)
    assert result.status == 401
    assert result.json()["error"]["status"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_a_stream_without_alt_sse_is_a_json_array_written_as_it_comes(
    gw: Setup, provider: str
) -> None:
    answer = Answer(text=TEXT, input_tokens=3, output_tokens=2)
    model = MODELS[provider]
    if provider == "gemini":
        events: list[Any] = gemini_events(answer, model)
        held = 1  # after the first text chunk
    else:
        events = openai_chat_events(answer, model, include_usage=True)
        held = 2  # after the role chunk and the first text piece
    gate = Gate()
    gw.up(provider).respond(Stream([*events[:held], gate, *events[held:]]))
    body = b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'
    path = f"/v1beta/models/{model}:streamGenerateContent"

    async def scenario() -> tuple[Any, bytes, bytes]:
        reader, writer = await connect(gw.port)
        try:
            writer.write(raw_request("POST", path, headers=gw.headers(), body=body))
            await writer.drain()
            head = await read_head(reader)
            first = await read_chunk(reader)  # while the upstream holds the rest back
            assert first is not None and not gate.timed_out
            gate.open()
            rest = []
            while (chunk := await read_chunk(reader)) is not None:
                rest.append(chunk)
            return head, first, b"".join(rest)
        finally:
            writer.close()

    head, first, rest = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert head.status == 200
    assert head.header("content-type") == "application/json; charset=utf-8"
    assert first.startswith(b"[{") and TEXT.split()[0].encode() in first
    whole = first + rest
    assert whole.endswith(b"}]") and b",\n{" in whole
    elements = json.loads(whole)
    text = "".join(
        p.get("text", "") for e in elements for p in e["candidates"][0]["content"]["parts"]
    )
    assert text == TEXT
    assert elements[-1]["candidates"][0]["finishReason"] == "STOP"
    assert elements[-1]["usageMetadata"]["totalTokenCount"] == 5


def test_the_model_list_in_googles_shape(gw: Setup) -> None:
    client = gw.client()
    names = [m.name for m in client.models.list()]
    assert {"models/oa-alias", "models/an-alias", "models/gem-alias"} <= set(names)
    model = client.models.get(model="gem-alias")
    assert model.name == "models/gem-alias"
    assert "generateContent" in (model.supported_actions or [])
    # a name behind a glob (gemini-*) is served, so it exists
    assert client.models.get(model="models/gemini-2.5-flash").name == "models/gemini-2.5-flash"
    result = get(gw, f"/v1beta/models?key={gw.key}", key=None)
    assert result.status == 200 and "models" in result.json()


# --- raw HTTP -------------------------------------------------------------------------------


def post(gw: Setup, path: str, body: bytes, key: str | None = "default") -> Any:
    headers = [("Content-Type", "application/json")]
    if key is not None:
        headers.append(("x-goog-api-key", gw.key if key == "default" else key))
    request = raw_request("POST", path, headers=headers, body=body)
    return asyncio.run(asyncio.wait_for(exchange(gw.port, request), 20))


def get(gw: Setup, path: str, key: str | None = "default") -> Any:
    headers = [("x-goog-api-key", gw.key)] if key is not None else []
    request = raw_request("GET", path, headers=headers)
    return asyncio.run(asyncio.wait_for(exchange(gw.port, request), 20))


def test_a_silent_json_array_stream_gets_no_sse_keepalive(gw: Setup) -> None:
    from conftest import wait_until

    gw.wired.store.update(lambda d: d["server"].update(stream_keepalive=0.05))
    try:
        wait_until(
            lambda: gw.wired.gateway.state.config.server.stream_keepalive == 0.05, 10, "reload"
        )
        answer = Answer(text=TEXT)
        body = b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'

        async def held(query: str) -> bytes:
            events = gemini_events(answer, GEMINI_MODEL)
            gate = Gate()
            gw.up("gemini").respond(Stream([events[0], gate, *events[1:]]))
            path = f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent{query}"
            reader, writer = await connect(gw.port)
            try:
                writer.write(raw_request("POST", path, headers=gw.headers(), body=body))
                await writer.drain()
                await read_head(reader)
                chunks = [await read_chunk(reader)]
                if query:  # SSE: wait for the keepalive, which proves it is on
                    while b"keepalive" not in (chunks[-1] or b""):
                        chunks.append(await read_chunk(reader))
                else:  # the array: as long a silence, with no keepalive in it
                    await asyncio.sleep(1.0)
                gate.open()
                while chunks[-1] is not None:
                    chunks.append(await read_chunk(reader))
                return b"".join(c for c in chunks if c)
            finally:
                writer.close()

        sse = asyncio.run(asyncio.wait_for(held("?alt=sse"), 30))
        array = asyncio.run(asyncio.wait_for(held(""), 30))
    finally:
        gw.wired.store.update(lambda d: d["server"].pop("stream_keepalive", None))
    assert b": keepalive" in sse
    assert b"keepalive" not in array
    assert (
        "".join(
            p.get("text", "")
            for e in json.loads(array)
            for p in e["candidates"][0]["content"]["parts"]
        )
        == TEXT
    )
