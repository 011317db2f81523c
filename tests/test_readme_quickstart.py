"""The README's quick start, run as written against a gateway started as the README
says, with a fake Anthropic upstream: its first ``curl`` gets the model's answer.

The shell block is read from README.md at test time, so the test follows the
README. Only what must change is changed: the Anthropic account's upstream
(``--base-url`` of a fake on 127.0.0.1, ``$ANTHROPIC_API_KEY`` a fake key) and
the port (the config names a free one; ``3847`` in the block becomes it).
``python3`` is this interpreter and ``llm-gateway.pyz`` is built for the test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from conftest import REPO, config_file, free_port, get_health, point_config_at, wait_until
from fake_upstream import Answer, FakeUpstream, answering

from llm_gateway.config.store import ConfigStore

ANSWER = "Hello from the fake upstream"
FAKE_KEY = "sk-ant-api03-" + "q" * 40
README_PORT = "3847"


def readme_block(heading: str) -> str:
    """The first ``sh`` block under ``## heading`` in README.md."""
    text = (REPO / "README.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None, f"no sh block under '## {heading}'"
    return match.group(1)


def with_fake_upstream(block: str, base_url: str) -> str:
    """Point the block's Anthropic account at ``base_url``; nothing else changes."""
    commands = re.split(r"(?<!\\)\n", block)  # logical lines: continuations stay joined
    changed = [
        re.sub(r"--provider anthropic(?=\s|$)", f"--provider anthropic --base-url {base_url}", c)
        if "upstream add" in c and "--base-url" not in c
        else c
        for c in commands
    ]
    assert changed != commands, "the quick start adds no Anthropic account"
    return "\n".join(changed)


def build_zipapp(directory: Path) -> Path:
    spec = importlib.util.spec_from_file_location("build_zipapp", REPO / "build_zipapp.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    path: Path = builder.build(directory / "llm-gateway.pyz")
    return path


def test_the_quick_start_gets_the_answer_on_its_first_curl(home: Path, tmp_path: Path) -> None:
    assert "llm-gateway.pyz server start" in (REPO / "README.md").read_text()  # how it starts
    work = tmp_path / "checkout"
    build_zipapp(work)
    bin_dir = tmp_path / "bin"  # `python3` in the block is this interpreter
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        LLM_GATEWAY_HOME=str(home),
        ANTHROPIC_API_KEY=FAKE_KEY,
        PYTHONPATH="",
    )
    port = free_port()
    point_config_at(ConfigStore(config_file(home)), port)  # the README's port, made free

    with FakeUpstream() as upstream:
        upstream.respond(answering(Answer(text=ANSWER)))
        server = subprocess.Popen(
            ["python3", "llm-gateway.pyz", "server", "start"],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def up() -> bool:
                assert server.poll() is None, server.communicate()[1]
                return get_health(port) is not None

            wait_until(up, 30.0, "the gateway to start")
            block = with_fake_upstream(readme_block("Quick start"), upstream.base_url)
            block = block.replace(f"127.0.0.1:{README_PORT}", f"127.0.0.1:{port}")
            run = subprocess.run(
                ["bash", "-e", "-c", block],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                _, log = server.communicate(timeout=30)
            finally:
                if server.poll() is None:
                    server.kill()
                    server.communicate()
        received = list(upstream.requests)

    assert run.returncode == 0, run.stdout + run.stderr
    answer = json.loads(run.stdout.splitlines()[-1])  # what curl printed
    assert answer["type"] == "message", answer
    assert answer["content"][0]["text"] == ANSWER
    assert [r.path for r in received] == ["/v1/messages"]
    assert received[0].header("x-api-key") == FAKE_KEY
    statuses = [
        line.get("status")
        for line in (json.loads(text) for text in log.splitlines() if text.startswith("{"))
        if line.get("path") == "/v1/messages"
    ]
    assert statuses == [200]  # the first curl, not a retry
    assert FAKE_KEY not in run.stdout + run.stderr + log
