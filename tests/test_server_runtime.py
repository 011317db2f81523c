"""The running gateway: live configuration reload, a file it never writes, and
``llm-gateway server start`` as a real process that stops cleanly on signals."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PYTHON,
    config_file,
    free_port,
    gateway_in_thread,
    get_health,
    run_cli,
    subprocess_env,
    wait_until,
)

from llm_gateway.config.store import ConfigStore

RELOAD_DEADLINE = 2.0


@pytest.fixture
def store(home: Path) -> ConfigStore:
    """The CLI's config file, created by a first command."""
    assert run_cli("apikey", "list").code == 0
    return ConfigStore(config_file(home))


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def runtime_log() -> Iterator[Records]:
    logger = logging.getLogger("llm_gateway.runtime")
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# --- live reload --------------------------------------------------------------


def test_cli_changes_reach_the_running_gateway_without_restart(
    store: ConfigStore, runtime_log: Records
) -> None:
    command = "upstream add --type api-key --provider anthropic --name main --json"
    add = run_cli(*command.split(), "--key", "sk-ant-api03-" + "k" * 40)
    account_id = add.json()["id"]
    with gateway_in_thread(store) as (gateway, port):
        health = get_health(port)
        assert health is not None and health["status"] == "ok"
        assert health["upstreams"] == {"total": 1, "enabled": 1, "available": 1}

        key_id = run_cli("apikey", "add", "--name", "new", "--json").json()["id"]
        wait_until(
            lambda: gateway.state.config.key_by_id(key_id) is not None,
            RELOAD_DEADLINE,
            "the new gateway key to be loaded",
        )

        assert run_cli("upstream", "disable", account_id).code == 0
        wait_until(
            lambda: not gateway.state.config.account_by_id(account_id).enabled,
            RELOAD_DEADLINE,
            "the disabled upstream to be loaded",
        )
        # Requests see the new configuration too.
        assert (get_health(port) or {})["upstreams"] == {"total": 1, "enabled": 0, "available": 0}
        written = config_file(store.home).read_bytes()
    assert config_file(store.home).read_bytes() == written
    assert "configuration reloaded" in runtime_log.messages()


def test_an_invalid_edit_is_logged_and_the_old_config_stays(
    store: ConfigStore, runtime_log: Records
) -> None:
    key_id = run_cli("apikey", "add", "--name", "kept", "--json").json()["id"]
    path = config_file(store.home)
    good = path.read_text()
    with gateway_in_thread(store) as (gateway, port):
        before = gateway.state.config
        broken = good.replace("port: 3847", 'port: "not a port"')
        assert broken != good
        path.write_text(broken)  # a hand edit gone wrong
        record = wait_until(
            lambda: next(
                (r for r in runtime_log.records if r.getMessage() == "configuration not reloaded"),
                None,
            ),
            5.0,
            "the rejected reload to be logged",
        )
        assert record.levelno == logging.ERROR
        error = record.__dict__["error"]
        assert str(path) in error and "server.port" in error and "line" in error
        assert gateway.state.config is before
        assert gateway.state.config.key_by_id(key_id) is not None
        assert (get_health(port) or {}).get("status") == "ok"  # still serving

        # Once the file is fixed, the next change is picked up.
        path.write_text(good.replace("port: 3847", "port: 3999"))
        wait_until(
            lambda: gateway.state.config.server.port == 3999,
            RELOAD_DEADLINE + 1.0,
            "the repaired file to be loaded",
        )
        assert path.read_text() == good.replace("port: 3847", "port: 3999")


def test_the_gateway_never_rewrites_the_config_file(store: ConfigStore) -> None:
    path = config_file(store.home)
    run_cli("apikey", "add", "--name", "a")
    data, stat_before = path.read_bytes(), os.stat(path)
    with gateway_in_thread(store) as (gateway, port):
        checks: list[bool] = []
        original = gateway.reload_if_changed

        def counting() -> bool:
            result: bool = original()
            checks.append(result)
            return result

        gateway.reload_if_changed = counting
        for _ in range(3):
            assert get_health(port) is not None
        wait_until(lambda: len(checks) >= 2, 5.0, "two reload checks")
        assert not any(checks)  # nothing changed, so nothing was reloaded
    stat_after = os.stat(path)
    assert path.read_bytes() == data
    assert (stat_after.st_ino, stat_after.st_mtime_ns) == (
        stat_before.st_ino,
        stat_before.st_mtime_ns,
    )
    assert sorted(p.name for p in store.home.iterdir()) == [".config.lock", "config.yaml"]


# --- the real process ---------------------------------------------------------


def start_server(home: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "llm_gateway",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
        ],
        env=subprocess_env(LLM_GATEWAY_HOME=str(home), LOG_LEVEL="warning"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, port


def wait_for_health(process: subprocess.Popen[str], port: int) -> dict[str, Any]:
    def answered() -> dict[str, Any] | None:
        if process.poll() is not None:
            pytest.fail(f"server exited early: {process.communicate()[1]}")
        return get_health(port)

    return wait_until(answered, 20.0, "the server to answer /health")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_server_start_serves_and_stops_on_a_signal(home: Path, signum: int) -> None:
    process, port = start_server(home)
    try:
        health = wait_for_health(process, port)
        assert health["status"] == "ok"
        process.send_signal(signum)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"llm-gateway listening on http://127.0.0.1:{port}" in err
    assert str(config_file(home)) in err
    assert "Traceback" not in err
    assert (home / "config.yaml").exists()  # first run created the default config
    assert get_health(port) is None  # and the port is free again


def test_server_start_refuses_an_invalid_config(home: Path) -> None:
    home.mkdir()
    config_file(home).write_text("server:\n  max_connections: none\n")
    process, _ = start_server(home)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 1
    assert err.startswith(f"error: {config_file(home)}: line 2: server.max_connections")
    assert config_file(home).read_text() == "server:\n  max_connections: none\n"


def test_server_start_reports_a_port_in_use(home: Path) -> None:
    first, port = start_server(home)
    try:
        wait_for_health(first, port)
        second = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "llm_gateway",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=subprocess_env(LLM_GATEWAY_HOME=str(home)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, err = second.communicate(timeout=15)
        assert second.returncode == 1
        assert err.strip().splitlines()[-1] == (
            f"error: a gateway already listens on 127.0.0.1:{port} (pid {first.pid})"
        )
        assert "Traceback" not in err
        assert get_health(port) is not None  # the first one is unaffected
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            first.communicate(timeout=15)
        finally:
            if first.poll() is None:
                first.kill()
                first.communicate()
    assert first.returncode == 0
