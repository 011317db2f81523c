"""The gateway's Responses codec against a request Codex really sent.

``fixtures/codex/responses_request.json`` is the second turn of a ``codex exec``
session (Codex 0.171.0, ``wire_api = "responses"``), captured at a fake upstream
with its headers (the key replaced): two ``developer`` messages, a
``namespace`` tool and a hosted ``web_search`` tool, ``include:
["reasoning.encrypted_content"]``, ``store: false``, ``client_metadata``, and
the shell call with its output. It must parse and convert to Anthropic and
OpenAI chat requests without losing the conversation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llm_gateway.formats.registry import FORMATS

CAPTURED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "codex" / "responses_request.json").read_text()
)
BODY: dict[str, Any] = CAPTURED["body"]
RESPONSES = FORMATS["openai-responses"]


def test_the_capture_has_what_codex_sends() -> None:
    headers = dict(CAPTURED["headers"])
    assert CAPTURED["path"] == "/v1/responses"
    assert headers["session-id"] and headers["originator"] == "codex_exec"
    assert headers["authorization"] == "Bearer <gateway key>"
    assert [i.get("role") for i in BODY["input"][:2]] == ["developer", "developer"]
    assert {t["type"] for t in BODY["tools"]} == {"function", "namespace", "web_search"}
    assert BODY["include"] == ["reasoning.encrypted_content"]
    assert BODY["store"] is False and BODY["stream"] is True


def test_captured_codex_request_converts_to_anthropic() -> None:
    body = FORMATS["anthropic-messages"].render_request(RESPONSES.parse_request(BODY))
    developer = [p["text"] for i in BODY["input"][:2] for p in i["content"]]
    assert [b["text"] for b in body["system"]] == developer
    names = [t["name"] for t in body["tools"]]
    assert names[:4] == ["exec_command", "write_stdin", "request_user_input", "view_image"]
    assert "multi_agent_v1--spawn_agent" in names and "web_search" not in names
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user"]
    call = body["messages"][1]["content"][-1]
    assert call == {
        "type": "tool_use",
        "id": "call_1",
        "name": "exec_command",
        "input": {"cmd": "echo hello-from-codex"},
    }
    result = body["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "call_1"
    assert "hello-from-codex" in json.dumps(result["content"])
    assert "Run echo hello-from-codex" in json.dumps(body["messages"][0])
    assert body["stream"] is True


def test_captured_codex_request_converts_to_chat() -> None:
    body = FORMATS["openai-chat"].render_request(RESPONSES.parse_request(BODY))
    roles = [m["role"] for m in body["messages"]]
    assert roles[0] == "system" and roles[-2:] == ["assistant", "tool"]
    assert "<skills_instructions>" in json.dumps(body["messages"][:2])
    call = body["messages"][-2]["tool_calls"][0]
    assert call["id"] == "call_1" and call["function"]["name"] == "exec_command"
    assert json.loads(call["function"]["arguments"]) == {"cmd": "echo hello-from-codex"}
    assert body["messages"][-1]["tool_call_id"] == "call_1"
    assert "hello-from-codex" in body["messages"][-1]["content"]
    names = [t["function"]["name"] for t in body["tools"]]
    assert "multi_agent_v1--close_agent" in names and len(names) == 8 + 5 - 1
    assert all(t["type"] == "function" for t in body["tools"])
    text = json.dumps(body)
    for responses_only in ("client_metadata", "encrypted_content", "web_search", '"store"'):
        assert responses_only not in text
