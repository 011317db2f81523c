"""``server.app``: pattern routes and the error format a path implies."""

from __future__ import annotations

import asyncio
import json

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
