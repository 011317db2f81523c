"""The real Codex CLI (``codex exec``) through the gateway's Responses endpoint.

Runs when Codex is installed (``.ci/run`` installs it from npm and sets
``CODEX_BIN``); skipped otherwise. Codex is pointed at the gateway by a
``config.toml`` in a temporary ``CODEX_HOME`` (a ``[model_providers.gw]``
block with ``wire_api = "responses"`` and the key in ``GW_KEY``). Codex sends
what it always sends (``namespace`` and ``web_search`` tools, two
``developer`` messages, ``include: ["reasoning.encrypted_content"]``,
``store: false``, streaming); a fake Anthropic or OpenAI-chat upstream answers
the first turn with a shell tool call and the second, which carries the
command's output, with text. The test checks that Codex ran the command and
printed the answer, and what the upstream got.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fake_upstream import (
    Answer,
    FakeUpstream,
    Received,
    Reply,
    ToolCall,
    add_account,
    add_gateway_key,
    answering,
    clear_proxy_environment,
    running_gateway,
)

from llm_gateway.config.store import ConfigStore

CODEX = os.environ.get("CODEX_BIN") or shutil.which("codex")
pytestmark = pytest.mark.skipif(
    CODEX is None or not Path(CODEX).exists(), reason="Codex is not installed"
)
MARKER = "hello-from-codex"


def codex_home(root: Path, port: int, model: str) -> Path:
    home = root / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{model}"\n'
        'model_provider = "gw"\n'
        "[model_providers.gw]\n"
        'name = "llm-gateway"\n'
        f'base_url = "http://127.0.0.1:{port}/v1"\n'
        'env_key = "GW_KEY"\n'
        'wire_api = "responses"\n'
    )
    return home


def run_codex(
    root: Path,
    port: int,
    key: str,
    model: str,
    prompt: str,
    *,
    builtin: bool = False,
    extra_config: str = "",
) -> subprocess.CompletedProcess[str]:
    """``codex exec`` through the gateway: as the README's ``gw`` provider, or as
    Codex's built-in OpenAI provider pointed at the gateway (``builtin``), with
    ``extra_config`` lines at the top of its ``config.toml``."""
    if builtin:
        home = root / "codex-home"
        home.mkdir()
        (home / "config.toml").write_text(
            extra_config + f'model = "{model}"\nopenai_base_url = "http://127.0.0.1:{port}/v1"\n'
        )
    else:
        home = codex_home(root, port, model)
    workdir = root / "project"
    workdir.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root / "user-home"),
        "CODEX_HOME": str(home),
        "GW_KEY": key,
    }
    assert CODEX is not None
    if builtin:  # the built-in provider takes its key from a login, not the environment
        login = subprocess.run(
            [CODEX, "login", "--with-api-key"],
            env=env, input=key, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert login.returncode == 0, login.stdout + login.stderr
    return subprocess.run(
        [CODEX, "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
         "-C", str(workdir), prompt],
        env=env, cwd=workdir, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def upstream_turn(request: Received) -> Reply:
    """First turn: run a shell command; once its output is back, say what it printed."""
    text = json.dumps(request.json())
    if MARKER in text and ("tool_result" in text or '"role": "tool"' in text):
        return answering(Answer(text=f"The command printed {MARKER}."))(request)
    if "Run the command" in text:
        call = ToolCall("call_codex_1", "exec_command", {"cmd": f"echo {MARKER}"})
        return answering(Answer(tool_calls=(call,)))(request)
    return answering(Answer(text="Hello from the gateway."))(request)


PROVIDERS = {
    "anthropic": ("claude-sonnet-4-5", "/v1/messages"),
    "openai-compatible": ("qwen3-coder", "/v1/chat/completions"),
}


def wired(up: FakeUpstream, provider: str) -> str:
    base = up.base_url if provider == "anthropic" else up.base_url + "/v1"
    add_account(provider, base, name="up", key="sk-upstream-" + "u" * 24, models="*")
    return add_gateway_key("codex")


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_codex_plain_prompt(
    provider: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_proxy_environment(monkeypatch)
    model, path = PROVIDERS[provider]
    with FakeUpstream() as up:
        up.respond(upstream_turn)
        key = wired(up, provider)
        with running_gateway(ConfigStore(home / "config.yaml")) as (_, port):
            result = run_codex(tmp_path, port, key, model, "Say hello.")
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == "Hello from the gateway."
        posts = [r for r in up.requests if r.method == "POST"]
        assert posts and all(r.path == path for r in posts)
        assert all(r.json()["model"] == model and r.json()["stream"] is True for r in posts)
        assert key not in result.stdout + result.stderr


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_codex_runs_a_shell_command_round_trip(
    provider: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_proxy_environment(monkeypatch)
    model, path = PROVIDERS[provider]
    with FakeUpstream() as up:
        up.respond(upstream_turn)
        key = wired(up, provider)
        with running_gateway(ConfigStore(home / "config.yaml")) as (_, port):
            result = run_codex(tmp_path, port, key, model, f"Run the command `echo {MARKER}`.")
        assert result.returncode == 0, result.stdout + result.stderr
        # Codex ran the command (its log shows it) and printed the model's last answer
        assert f"echo {MARKER}" in result.stderr
        assert result.stdout.strip() == f"The command printed {MARKER}."
        turns = [r.json() for r in up.requests if r.method == "POST" and r.path == path]
        assert len(turns) >= 2
        first, second = turns[0], turns[-1]
        text = json.dumps(first)
        for responses_only in ("client_metadata", "encrypted_content", "web_search", "namespace"):
            assert responses_only not in text
        if provider == "anthropic":
            names = [t["name"] for t in first["tools"]]
            assert len(first["system"]) >= 2  # Codex's two developer messages
            results = [
                b
                for m in second["messages"]
                if isinstance(m["content"], list)
                for b in m["content"]
                if b["type"] == "tool_result"
            ]
            assert results and results[0]["tool_use_id"] == "call_codex_1"
            assert MARKER in json.dumps(results[0]["content"])
        else:
            names = [t["function"]["name"] for t in first["tools"]]
            assert first["messages"][0]["role"] == "system"
            tool = [m for m in second["messages"] if m["role"] == "tool"]
            assert tool and tool[0]["tool_call_id"] == "call_codex_1"
            assert MARKER in tool[0]["content"]
        assert "exec_command" in names and "multi_agent_v1--spawn_agent" in names


def test_codex_builtin_openai_provider_falls_back_to_http_at_once(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codex's own OpenAI provider tries a WebSocket first; the gateway's 426 makes it
    use HTTP straight away instead of reconnecting five times."""
    clear_proxy_environment(monkeypatch)
    with FakeUpstream() as up:
        up.respond(upstream_turn)
        key = wired(up, "anthropic")
        with running_gateway(ConfigStore(home / "config.yaml")) as (_, port):
            result = run_codex(tmp_path, port, key, "claude-sonnet-4-5", "Say hello.", builtin=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == "Hello from the gateway."
        assert "Reconnecting" not in result.stderr
        assert [r.path for r in up.requests if r.method == "POST"] == ["/v1/messages"]


def test_codex_builtin_provider_compacts_through_a_converted_upstream(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codex's own OpenAI provider with a tiny auto-compaction limit asks the gateway
    to compact (a ``compaction_trigger`` request): the Anthropic upstream writes the
    summary, Codex gets its compaction item, and the next turn carries the summary."""
    from llm_gateway.formats.responses_compaction import SUMMARY_INSTRUCTION

    clear_proxy_environment(monkeypatch)
    summary = "SUMMARY: the user wants echo hello-from-codex run."

    def turn(request: Received) -> Reply:
        text = json.dumps(request.json())
        if SUMMARY_INSTRUCTION in text:
            return answering(Answer(text=summary))(request)
        if summary in text:  # the history now is the summary: the work is done
            return answering(Answer(text="Finished from the summary."))(request)
        return upstream_turn(request)

    with FakeUpstream() as up:
        up.respond(turn)
        key = wired(up, "anthropic")
        with running_gateway(ConfigStore(home / "config.yaml")) as (_, port):
            result = run_codex(
                tmp_path,
                port,
                key,
                "claude-sonnet-4-5",
                f"Run the command `echo {MARKER}`.",
                builtin=True,
                extra_config="model_auto_compact_token_limit = 10\n",
            )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "context compacted" in result.stderr
        assert result.stdout.strip() == "Finished from the summary."
        texts = [json.dumps(r.json()) for r in up.requests if r.method == "POST"]
        asked = [n for n, text in enumerate(texts) if SUMMARY_INSTRUCTION in text]
        assert asked, "Codex never compacted"
        summarising = json.loads(texts[asked[0]])
        assert not summarising.get("stream") and "compaction_trigger" not in texts[asked[0]]
        # the turn after it: Codex sent its compaction item, the upstream got the summary
        assert summary in texts[asked[0] + 1] and "llmgw-compaction" not in texts[asked[0] + 1]
        assert key not in result.stdout + result.stderr
