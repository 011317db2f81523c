"""The real Claude Code CLI through the gateway, with an OpenAI-format upstream behind it.

Runs when Claude Code is installed (``.ci/run`` installs it from npm and sets
``CLAUDE_CODE_BIN``); skipped otherwise. Claude Code sends what it always
sends (two dozen tools, system blocks with ``cache_control``, ``thinking``,
``context_management``, ``metadata.user_id``, streaming); a fake
OpenAI-compatible upstream answers the first turn with a Bash tool call and
the second, which carries the tool's output, with text. The test checks that
Claude Code ran the tool and reported the answer, and what the upstream got.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from fake_upstream import (
    Answer,
    FakeUpstream,
    Received,
    Reply,
    ToolCall,
    answering,
    clear_proxy_environment,
    openai_error,
    running_gateway,
)

from llm_gateway.config.store import ConfigStore

CLAUDE = os.environ.get("CLAUDE_CODE_BIN") or shutil.which("claude")
pytestmark = pytest.mark.skipif(
    CLAUDE is None or not Path(CLAUDE).exists(), reason="Claude Code is not installed"
)
MARKER = "gateway-round-trip-ok"


def claude_runs_bash(
    home: Path, tmp_path: Path, key: str, model: str | None = None
) -> dict[str, Any]:
    """Claude Code, through a gateway on ``home``, asked to run ``echo MARKER`` with
    its Bash tool (``model``: passed as ``--model``); its JSON outcome."""
    workdir = tmp_path / "project"
    workdir.mkdir()
    with running_gateway(ConfigStore(home / "config.yaml")) as (_, port):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path / "cc-home"),
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}",
            "ANTHROPIC_API_KEY": key,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
        assert CLAUDE is not None
        result = subprocess.run(
            [CLAUDE, "-p", f"Run `echo {MARKER}` with the Bash tool and say what it printed.",
             "--allowedTools", "Bash", "--output-format", "json",
             *(("--model", model) if model else ())],
            env=env, cwd=workdir, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout)
    assert outcome["is_error"] is False, outcome
    assert outcome["result"] == f"The command printed {MARKER}."
    return outcome


def upstream_turn(request: Received) -> Reply:
    body = request.json()
    if any(m.get("role") == "tool" for m in body.get("messages", [])):
        return answering(Answer(text=f"The command printed {MARKER}."))(request)
    if body.get("tools"):
        call = ToolCall("call_1", "Bash", {"command": f"echo {MARKER}", "description": "echo"})
        return answering(Answer(tool_calls=(call,)))(request)
    return answering(Answer(text="ok"))(request)


def test_claude_code_runs_a_tool_round_trip_over_an_openai_upstream(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_proxy_environment(monkeypatch)
    with FakeUpstream() as up:
        up.respond(upstream_turn)
        added = run_cli("upstream", "add", "--type", "api-key", "--provider",
                        "openai-compatible", "--name", "compatible", "--key",
                        "sk-compatible-" + "c" * 20, "--base-url", up.base_url + "/v1",
                        "--models", "*")  # fmt: skip
        assert added.code == 0, added.output
        key: str = run_cli("apikey", "add", "--name", "cc", "--json").json()["key"]
        outcome = claude_runs_bash(home, tmp_path, key)
        assert outcome["num_turns"] >= 2
        turns = [r.json() for r in up.requests if r.method == "POST" and r.json().get("tools")]
        assert len(turns) >= 2
        first, second = turns[0], turns[-1]
        # a valid OpenAI chat request: many tools, system first, nothing Anthropic-only
        assert len(first["tools"]) >= 20
        assert all(t["type"] == "function" for t in first["tools"])
        assert first["messages"][0]["role"] == "system"
        text = json.dumps(first)
        for anthropic_only in ("cache_control", "context_management", "input_schema"):
            assert anthropic_only not in text
        assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
        # the second turn carries the tool call and Claude Code's tool output
        tool_messages = [m for m in second["messages"] if m["role"] == "tool"]
        assert tool_messages and MARKER in json.dumps(tool_messages)
        assert any(m.get("tool_calls") for m in second["messages"] if m["role"] == "assistant")


def responses_turn(request: Received) -> Reply:
    """A Responses-only upstream: the first turn asks for Bash, the next reports."""
    if request.path != "/v1/responses":
        return openai_error(404, "invalid_request_error", "only supported in v1/responses")
    items = request.json().get("input", [])
    if any(i.get("type") == "function_call_output" for i in items):
        return answering(Answer(text=f"The command printed {MARKER}."))(request)
    if request.json().get("tools"):
        call = ToolCall("call_1", "Bash", {"command": f"echo {MARKER}", "description": "echo"})
        return answering(Answer(tool_calls=(call,)))(request)
    return answering(Answer(text="ok"))(request)


def test_claude_code_runs_a_tool_round_trip_over_a_responses_only_upstream(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_proxy_environment(monkeypatch)
    with FakeUpstream() as up:
        up.respond(responses_turn)
        added = run_cli("upstream", "add", "--type", "api-key", "--provider", "openai",
                        "--name", "pro", "--key", "sk-openai-" + "p" * 24,
                        "--base-url", up.base_url + "/v1", "--models", "*",
                        "--wire", "responses")  # fmt: skip
        assert added.code == 0, added.output
        key: str = run_cli("apikey", "add", "--name", "cc", "--json").json()["key"]
        claude_runs_bash(home, tmp_path, key, "gpt-5-pro")
        posts = [r for r in up.requests if r.method == "POST"]
        assert posts and all(r.path == "/v1/responses" for r in posts)
        turns = [r.json() for r in posts if r.json().get("tools")]
        assert len(turns) >= 2
        first, second = turns[0], turns[-1]
        assert len(first["tools"]) >= 20 and first["store"] is False
        text = json.dumps(first)
        for anthropic_only in ("cache_control", "context_management", "input_schema"):
            assert anthropic_only not in text
        outputs = [i for i in second["input"] if i.get("type") == "function_call_output"]
        assert outputs and outputs[0]["call_id"] == "call_1" and MARKER in json.dumps(outputs[0])


#: what the fake Gemini 3 signs its thought and its function call with (distinct,
#: so that a signature moved to the wrong part is noticed)
THOUGHT_SIGNED = "CiQBcsjafGThoughtSignatureForClaudeCode+/=="
CALL_SIGNED = "CiQBcsjafGCallSignatureForClaudeCode0123+/="


def _gemini_chunk(parts: list[dict[str, Any]], model: str, finish: str | None = None) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    usage = {"promptTokenCount": 40, "candidatesTokenCount": 8, "totalTokenCount": 48}
    body = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}
    return f"data: {json.dumps(body)}\n\n".encode()


def gemini_turn(request: Received) -> Reply:
    """A Gemini 3 model: with tools and no function response yet, it thinks and calls
    Bash, signing both parts; a function call sent back without its signature (or
    with another) is refused with 400 INVALID_ARGUMENT, as Gemini 3 refuses it."""
    from fake_upstream import Stream, json_reply

    model = request.path.rsplit("/", 1)[-1].split(":", 1)[0]
    body = request.json()
    contents = body.get("contents", [])
    parts = [p for c in contents for p in c.get("parts", [])]
    for part in parts:
        if "functionCall" in part and part.get("thoughtSignature") != CALL_SIGNED:
            error = {
                "code": 400,
                "message": "Function call is missing a thought_signature in functionCall parts.",
                "status": "INVALID_ARGUMENT",
            }
            return json_reply({"error": error}, 400)
    if any("functionResponse" in p for p in parts):
        text = [{"text": f"The command printed {MARKER}."}]
        return Stream([_gemini_chunk(text, model, "STOP")])
    if body.get("tools"):
        thought = {"text": "Run it.", "thought": True, "thoughtSignature": THOUGHT_SIGNED}
        call = {
            "functionCall": {
                "name": "Bash",
                "args": {"command": f"echo {MARKER}", "description": "echo"},
            },
            "thoughtSignature": CALL_SIGNED,
        }
        return Stream([_gemini_chunk([thought], model), _gemini_chunk([call], model, "STOP")])
    return Stream([_gemini_chunk([{"text": "ok"}], model, "STOP")])


def test_claude_code_runs_a_tool_round_trip_over_a_gemini_upstream(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_proxy_environment(monkeypatch)
    with FakeUpstream() as up:
        up.respond(gemini_turn)
        added = run_cli("upstream", "add", "--type", "api-key", "--provider", "gemini",
                        "--name", "gemini", "--key", "AIzaSyClaudeCodeGeminiKey0123456789abc",
                        "--base-url", up.base_url + "/v1beta", "--models", "*")  # fmt: skip
        assert added.code == 0, added.output
        key: str = run_cli("apikey", "add", "--name", "cc", "--json").json()["key"]
        claude_runs_bash(home, tmp_path, key, "gemini-3-pro-preview")
        posts = [r for r in up.requests if r.method == "POST"]
        turns = [r for r in posts if r.json().get("tools")]
        assert len(turns) >= 2
        assert turns[0].path == "/v1beta/models/gemini-3-pro-preview:streamGenerateContent"
        first, second = turns[0].json(), turns[-1].json()
        # Claude Code's two dozen tools, each accepted by Gemini's schema subset
        declarations = first["tools"][0]["functionDeclarations"]
        assert len(declarations) >= 20 and "Bash" in {d["name"] for d in declarations}
        assert "cachedContent" not in first and "cache_control" not in json.dumps(first)
        # the second turn: the call back on its part with its signature, byte for
        # byte, the thought with its own, and Bash's output answering it by name
        model_turn = [c for c in second["contents"] if c["role"] == "model"][-1]
        (call,) = [p for p in model_turn["parts"] if "functionCall" in p]
        assert call["functionCall"]["name"] == "Bash"
        assert call["thoughtSignature"] == CALL_SIGNED
        thoughts = [p for p in model_turn["parts"] if p.get("thought")]
        assert [p.get("thoughtSignature") for p in thoughts] == [THOUGHT_SIGNED]
        responses = [
            p["functionResponse"]
            for c in second["contents"]
            if c["role"] == "user"
            for p in c["parts"]
            if "functionResponse" in p
        ]
        assert [r["name"] for r in responses] == ["Bash"]
        assert MARKER in json.dumps(responses[0]["response"])
