"""What Codex does beyond a plain ``POST /v1/responses``, through a running gateway.

* A WebSocket upgrade on ``/v1/responses`` (Codex's built-in OpenAI provider
  tries one first, with ``openai-beta: responses_websockets=...``) is refused
  at once with 426, the status on which Codex falls back to HTTP; any other
  refusal makes it reconnect five times with backoff first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import exchange, raw_request, run
from fake_upstream import Wired, isolate_environment, wired_gateway


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
