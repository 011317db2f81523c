"""``server start``'s one line: address, config file, how many keys and upstream
accounts, and the next command when either is missing."""

from __future__ import annotations

import shlex
import signal
import subprocess
from pathlib import Path

from conftest import (
    PYTHON,
    config_file,
    free_port,
    get_health,
    run_cli,
    server_command,
    subprocess_env,
    wait_until,
)

from llm_gateway.config.schema import Config, parse_config
from llm_gateway.server.banner import NEXT_KEY, NEXT_UPSTREAM, start_line


def _config(keys: int, upstreams: int) -> Config:
    return parse_config(
        {
            "gateway_keys": [
                {"id": f"k{i:07d}", "name": "k", "hash": "x" * 64} for i in range(keys)
            ],
            "upstream_accounts": [
                {"id": f"up-{i}", "name": "u", "type": "api-key", "provider": "anthropic"}
                for i in range(upstreams)
            ],
        }
    )


UPSTREAM = "upstream add --type api-key --provider anthropic --name main --key -"
KEY = "apikey add --name NAME"


def test_an_empty_gateway_is_told_what_to_run_next() -> None:
    line = start_line("http://127.0.0.1:3847", "/h/config.yaml", _config(0, 0))
    assert line == (
        "llm-gateway listening on http://127.0.0.1:3847 (config: /h/config.yaml; "
        f"0 gateway keys, 0 upstream accounts); next: llm-gateway {UPSTREAM}, "
        f"then llm-gateway {KEY}"
    )
    assert (NEXT_UPSTREAM, NEXT_KEY) == (UPSTREAM, KEY)


def test_counts_only_the_missing_step_and_the_command_as_run() -> None:
    zipapp = "python3 llm-gateway.pyz"
    line = start_line("http://h:1", "/c", _config(1, 0), zipapp)
    assert line.endswith(f"1 gateway key, 0 upstream accounts); next: {zipapp} {UPSTREAM}")
    line = start_line("http://h:1", "/c", _config(0, 2), zipapp)
    assert line.endswith(f"0 gateway keys, 2 upstream accounts); next: {zipapp} {KEY}")
    line = start_line("http://h:1", "/c", _config(2, 1))
    assert line.endswith("(config: /c; 2 gateway keys, 1 upstream account)")


def _start_and_stop(home: Path) -> str:
    port = free_port()
    process = subprocess.Popen(
        server_command(port),
        env=subprocess_env(LLM_GATEWAY_HOME=str(home), LOG_LEVEL="warning"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: process.poll() is not None or get_health(port), 20.0, "the server")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    return err


def test_server_start_prints_one_line_a_newcomer_can_act_on(home: Path) -> None:
    err = _start_and_stop(home)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("llm-gateway listening on http://127.0.0.1:")
    assert f"(config: {config_file(home)}; 0 gateway keys, 0 upstream accounts)" in lines[0]
    program = shlex.join([PYTHON, "-m", "llm_gateway"])  # as this test runs it
    assert lines[0].endswith(f"next: {program} {UPSTREAM}, then {program} {KEY}")

    assert run_cli("apikey", "add", "--name", "first").code == 0
    err = _start_and_stop(home)
    assert err.endswith(f"1 gateway key, 0 upstream accounts); next: {program} {UPSTREAM}\n")
