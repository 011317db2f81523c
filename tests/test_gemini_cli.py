"""Google's Gemini CLI through the gateway's Gemini API, with OpenAI and Anthropic
upstreams behind it.

Runs when the CLI is installed (``.ci/run`` installs ``@google/gemini-cli`` from
npm and sets ``GEMINI_CLI_BIN``); skipped otherwise. The CLI is pointed at the
gateway with ``GOOGLE_GEMINI_BASE_URL`` and a gateway key in ``GEMINI_API_KEY``
(API-key auth chosen in its settings file), and runs headless
(``GEMINI_CLI_TRUST_WORKSPACE=true``, ``-p``). It sends what it always sends:
``:streamGenerateContent?alt=sse`` with its system instruction and a dozen
function declarations. A fake upstream answers a plain prompt with text, or
the first turn of a task with a ``run_shell_command`` call and the second,
which carries the command's output, with text. The test checks what the CLI
reported and what the upstream got.
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
    add_account,
    answering,
    clear_proxy_environment,
    running_gateway,
)

from llm_gateway.config.store import ConfigStore

GEMINI_CLI = os.environ.get("GEMINI_CLI_BIN") or shutil.which("gemini")
pytestmark = pytest.mark.skipif(
    GEMINI_CLI is None or not Path(GEMINI_CLI).exists(), reason="Gemini CLI is not installed"
)
MARKER = "gemini-cli-round-trip-ok"
MODEL = "gemini-2.5-flash"
UPSTREAM_KEYS = {"openai": "sk-upstream-cli-" + "o" * 24, "anthropic": "sk-ant-cli-" + "a" * 24}


def has_tool_result(body: dict[str, Any]) -> bool:
    for message in body.get("messages", []):
        if message.get("role") == "tool":
            return True
        content = message.get("content")
        if isinstance(content, list) and any(b.get("type") == "tool_result" for b in content):
            return True
    return False


#: what the CLI's model router (a JSON-schema request) gets back
ROUTE = {"complexity_reasoning": "A one-word answer.", "complexity_score": 5}


def upstream_turn(request: Received) -> Reply:
    body = request.json()
    if "response_format" in body:
        return answering(Answer(text=json.dumps(ROUTE)))(request)
    if has_tool_result(body):
        return answering(Answer(text=f"The command printed {MARKER}."))(request)
    prompt = json.dumps(body.get("messages", []))
    if body.get("tools") and "Run `echo" in prompt:
        call = ToolCall("call_cli1", "run_shell_command", {"command": f"echo {MARKER}"})
        return answering(Answer(tool_calls=(call,)))(request)
    return answering(Answer(text="pong from the gateway"))(request)


def run_gemini(
    prompt: str, port: int, key: str, tmp_path: Path, model: str | None = MODEL
) -> dict[str, Any]:
    home = tmp_path / "cli-home"
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(
        json.dumps(
            {
                "security": {"auth": {"selectedType": "gemini-api-key"}},
                "privacy": {"usageStatisticsEnabled": False},
                "telemetry": {"enabled": False},
            }
        )
    )
    workdir = tmp_path / "project"
    workdir.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "GOOGLE_GEMINI_BASE_URL": f"http://127.0.0.1:{port}",
        "GEMINI_API_KEY": key,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "NO_COLOR": "1",
    }
    assert GEMINI_CLI is not None
    result = subprocess.run(
        [GEMINI_CLI, "-p", prompt, *(["-m", model] if model else []),
         "--output-format", "json", "--approval-mode", "yolo"],
        env=env, cwd=workdir, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout)
    assert key not in result.stdout + result.stderr
    return outcome


@pytest.fixture(params=["openai", "anthropic"])
def upstream(
    request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    clear_proxy_environment(monkeypatch)
    provider: str = request.param
    with FakeUpstream() as up:
        up.respond(upstream_turn)
        base = up.base_url + ("/v1" if provider == "openai" else "")
        add_account(provider, base, name=provider, key=UPSTREAM_KEYS[provider], models="*")
        key: str = run_cli("apikey", "add", "--name", "cli", "--json").json()["key"]
        with running_gateway(ConfigStore(home / "config.yaml")) as (_, port):
            yield provider, up, port, key


def test_a_plain_prompt(upstream: Any, tmp_path: Path) -> None:
    provider, up, port, key = upstream
    outcome = run_gemini("Say pong.", port, key, tmp_path)
    assert outcome["response"] == "pong from the gateway"
    sent = [r for r in up.requests if r.method == "POST"]
    assert sent and all(r.json()["model"] == MODEL for r in sent)
    body = sent[-1].json()
    assert body["stream"] is True
    assert "Say pong." in json.dumps(body["messages"])
    if provider == "anthropic":  # what Anthropic requires of the CLI's thinking budget
        thinking = body.get("thinking")
        assert thinking is None or thinking["budget_tokens"] < body["max_tokens"]
    for request in sent:
        assert key not in json.dumps([request.headers, request.path, request.query])
        assert request.query == ""


def test_a_tool_round_trip(upstream: Any, tmp_path: Path) -> None:
    provider, up, port, key = upstream
    outcome = run_gemini(f"Run `echo {MARKER}` and tell me what it printed.", port, key, tmp_path)
    assert outcome["response"] == f"The command printed {MARKER}."
    turns = [r.json() for r in up.requests if r.method == "POST" and r.json().get("tools")]
    assert len(turns) >= 2
    first, second = turns[0], turns[-1]
    names = [t["function"]["name"] if provider == "openai" else t["name"] for t in first["tools"]]
    assert "run_shell_command" in names and len(names) >= 8
    assert has_tool_result(second)
    # the command really ran: its output came back in the tool result
    assert MARKER in json.dumps(second["messages"][-1])
    if provider == "openai":
        (call,) = second["messages"][-2]["tool_calls"]
        assert second["messages"][-1]["tool_call_id"] == call["id"]
    else:
        uses = [b for b in second["messages"][-2]["content"] if b["type"] == "tool_use"]
        results = [b for b in second["messages"][-1]["content"] if b["type"] == "tool_result"]
        assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]


@pytest.mark.parametrize("upstream", ["openai"], indirect=True)
def test_the_default_model_router_asks_for_json_through_generate_content(
    upstream: Any, tmp_path: Path
) -> None:
    """Without ``-m`` the CLI first asks a small model to rate the task
    (``:generateContent`` with a response schema), then streams the answer."""
    provider, up, port, key = upstream
    outcome = run_gemini("Say pong.", port, key, tmp_path, model=None)
    assert outcome["response"] == "pong from the gateway"
    sent = [r.json() for r in up.requests if r.method == "POST"]
    routers = [b for b in sent if "response_format" in b]
    assert len(routers) == 1  # answered at the first try: its JSON was readable
    assert routers[0]["response_format"]["type"] == "json_schema"
    assert "stream" not in routers[0]
    assert sent[-1]["stream"] is True
