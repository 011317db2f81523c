"""Codex's remote compaction for upstreams that cannot compact: the summarising
request, the sealed item, and its expansion on later turns (bound to the key)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from test_stream_validators import check_responses

from llm_gateway.errors import InvalidRequest
from llm_gateway.formats.registry import FORMATS
from llm_gateway.formats.responses_compaction import (
    SUMMARY_HEADER,
    SUMMARY_INSTRUCTION,
    compaction_item,
    compaction_response,
    expand_compactions,
    is_compaction_request,
    summarising_request,
    summary_of,
)
from llm_gateway.pipeline.call import parse_call
from llm_gateway.pipeline.compaction import Compactions, compaction_stream
from llm_gateway.pipeline.endpoints import ENDPOINTS
from llm_gateway.server.messages import Request

CAPTURED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "codex" / "responses_request.json").read_text()
)["body"]
SECRET = bytes(range(32))


def codex_compaction() -> dict[str, Any]:
    body = copy.deepcopy(CAPTURED)
    body["input"].append({"type": "compaction_trigger"})
    return body


def test_only_an_input_ending_with_the_trigger_asks_for_compaction() -> None:
    assert is_compaction_request(codex_compaction())
    assert not is_compaction_request(CAPTURED)
    assert not is_compaction_request({"input": "text"})


def test_the_summarising_request_converts_for_anthropic() -> None:
    body = summarising_request(codex_compaction())
    assert body["stream"] is False and "store" not in body and "include" not in body
    assert body["tools"] == CAPTURED["tools"] and body["tool_choice"] == "none"
    assert body["input"][:-1] == CAPTURED["input"]
    unified = FORMATS["openai-responses"].parse_request(body)
    anthropic = FORMATS["anthropic-messages"].render_request(unified)
    assert anthropic["messages"][-1]["content"][-1] == {
        "type": "text",
        "text": SUMMARY_INSTRUCTION,
    }
    assert anthropic["tool_choice"] == {"type": "none"}


def _request(body: dict[str, Any]) -> Request:
    raw = json.dumps(body).encode()
    return Request("POST", "/v1/responses", "", [("content-type", "application/json")], raw, "r1")


def _call(body: dict[str, Any]) -> Any:
    return parse_call(ENDPOINTS["/v1/responses"], json.dumps(body).encode(), {})


def _item_for(compactions: Compactions, key_id: str, summary: str) -> dict[str, Any]:
    """A compaction made by the gateway for ``key_id``, as ``finish`` makes it."""
    from llm_gateway.server.messages import json_response

    summarised = {"id": "resp_1", "output": [_message(summary)], "usage": None}
    request = _request(codex_compaction())
    request.notes["compaction"] = "summarised"
    call = _call({**codex_compaction(), "stream": False})
    answer = compactions.finish(request, call, key_id, json_response(200, summarised))
    assert isinstance(answer.body, bytes)
    item: dict[str, Any] = json.loads(answer.body)["output"][0]
    return item


def _message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def test_the_item_opens_for_its_key_only() -> None:
    compactions = Compactions(lambda: SECRET)
    item = _item_for(compactions, "key-a", "the summary")
    assert "the summary" not in json.dumps(item)
    body = {"model": "m", "input": [item, {"type": "message", "role": "user", "content": "go"}]}
    request = _request(body)
    call = compactions.expand(request, _call(body), "key-a")
    first = call.body["input"][0]
    assert first["role"] == "user"
    assert first["content"][0]["text"] == SUMMARY_HEADER + "the summary"
    assert json.loads(request.body) == call.body  # what a passthrough would send
    with pytest.raises(InvalidRequest, match="not made by this gateway"):
        compactions.expand(_request(body), _call(body), "key-b")
    with pytest.raises(InvalidRequest):  # another gateway (another secret key)
        Compactions(lambda: bytes(32)).expand(_request(body), _call(body), "key-a")


def test_openais_own_compaction_items_stay_as_they_are() -> None:
    own = {"type": "compaction", "id": "cmp_1", "encrypted_content": "gAAAA-openai-state"}
    assert expand_compactions([own], lambda sealed: pytest.fail("nothing to open")) is None


def test_the_streamed_compaction_follows_the_event_grammar() -> None:
    summarised = {
        "id": "resp_9",
        "object": "response",
        "created_at": 5,
        "status": "completed",
        "incomplete_details": None,
        "model": "upstream-model",
        "output": [_message("s")],
        "usage": {
            "input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 20,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 120,
        },
    }
    assert summary_of(summarised) == "s"
    answer = compaction_response(summarised, compaction_item("llmgw-compaction:x"), model="gpt-5")
    view = check_responses(compaction_stream(answer), model="gpt-5")
    assert view.items == (("compaction", "llmgw-compaction:x"),)
    assert view.status == "completed" and view.usage == (100, 20, 0, 0)
