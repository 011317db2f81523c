"""``server.app``: pattern routes and the error format a path implies."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import AsyncIterator

from llm_gateway.config.schema import default_document, parse_config
from llm_gateway.server.app import GatewayApp, GatewayState, error_for_status
from llm_gateway.server.messages import Request, Response, json_response
from llm_gateway.server.paths import PathPattern


def app_with_patterns() -> GatewayApp:
    app = GatewayApp(GatewayState(parse_config(default_document())))
    generate = PathPattern.parse("/v1beta/models/{model}:generateContent")

    async def handler(request: Request) -> Response:
        return json_response(200, {"model": generate.match(request.path)})

    app.route_pattern("POST", generate, handler)
    return app


def call(app: GatewayApp, method: str, path: str) -> Response:
    return asyncio.run(app(Request(method, path, "", [], b"", "req_1")))


def body(response: Response) -> dict[str, object]:
    assert isinstance(response.body, bytes)
    parsed: dict[str, object] = json.loads(response.body)
    return parsed


def test_a_pattern_route_takes_every_path_it_matches() -> None:
    app = app_with_patterns()
    response = call(app, "POST", "/v1beta/models/gemini-2.5-flash:generateContent")
    assert (response.status, body(response)) == (200, {"model": "gemini-2.5-flash"})


def test_another_method_on_a_pattern_path_is_a_405_in_googles_shape() -> None:
    response = call(app_with_patterns(), "GET", "/v1beta/models/g:generateContent")
    assert response.status == 405
    assert ("allow", "POST") in response.headers
    error = body(response)["error"]
    assert isinstance(error, dict) and error["status"] == "INVALID_ARGUMENT"


def test_an_unknown_gemini_path_is_googles_not_found() -> None:
    response = call(app_with_patterns(), "POST", "/v1beta/models/g:embedContent")
    assert response.status == 404
    assert body(response)["error"] == {
        "code": 404,
        "message": "no such endpoint: POST /v1beta/models/g:embedContent",
        "status": "NOT_FOUND",
    }


def test_errors_the_server_raises_itself_follow_the_path() -> None:
    gemini = body(error_for_status(413, "too large", "/v1beta/models/g:generateContent"))
    assert gemini == {"error": {"code": 413, "message": "too large", "status": "INVALID_ARGUMENT"}}
    anthropic = body(error_for_status(413, "too large", "/v1/messages"))
    assert anthropic["type"] == "error"
    openai = body(error_for_status(413, "too large", "/v1/chat/completions"))
    assert isinstance(openai["error"], dict) and "status" not in openai["error"]


def test_a_finished_stream_is_freed_without_waiting_for_a_garbage_collection() -> None:
    """With a ``finished`` hook (the ledger, the metrics, access logs) a streamed
    answer is wrapped; nothing may tie it into a reference cycle, or every stream's
    objects (its upstream response, parser, buffers) wait for the collector."""
    app = GatewayApp(GatewayState(parse_config(default_document())))
    seen: list[int] = []
    app.finished.append(lambda request, status, duration: seen.append(status))

    class Stream:
        async def chunks(self) -> AsyncIterator[bytes]:
            yield b"data: 1\n\n"

        def __aiter__(self) -> AsyncIterator[bytes]:
            return self.chunks()

        async def aclose(self) -> None:
            pass

    streams: list[weakref.ref[Stream]] = []

    async def handler(request: Request) -> Response:
        stream = Stream()
        streams.append(weakref.ref(stream))
        return Response(200, [("content-type", "text/event-stream")], stream)

    app.route("POST", "/v1/chat/completions", handler)

    async def serve() -> None:
        response = await app(Request("POST", "/v1/chat/completions", "", [], b"", "req_1"))
        assert not isinstance(response.body, bytes)
        async for _ in response.body:
            pass
        await response.body.aclose()  # type: ignore[union-attr]

    gc.disable()
    try:
        asyncio.run(serve())
        assert seen == [200]
        assert streams[0]() is None  # freed by reference counting alone
    finally:
        gc.enable()
