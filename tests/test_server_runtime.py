"""The running gateway: live configuration reload (races with writers, empty and
missing files, settings applied or reported, parsing off the event loop), what
``/health`` says, a file it never writes, and ``llm-gateway server start`` as a
real process that stops cleanly on signals."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    config_file,
    free_port,
    gateway_in_thread,
    get_health,
    run_cli,
    server_command,
    subprocess_env,
    wait_until,
)

from llm_gateway import __version__
from llm_gateway.config.store import ConfigStore
from llm_gateway.errors import ConfigError

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
        original = gateway.reload

        async def counting() -> bool:
            result: bool = await original()
            checks.append(result)
            return result

        gateway.reload = counting
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


def request(
    port: int, method: str, path: str, key: str | None = None, body: bytes = b""
) -> tuple[int, bytes]:
    """One request to the gateway; its status and body."""
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def errors_logged(records: Records) -> list[str]:
    return [
        str(r.__dict__.get("error"))
        for r in records.records
        if r.getMessage() == "configuration not reloaded" and r.levelno == logging.ERROR
    ]


def test_a_write_landing_while_a_half_written_file_is_parsed_is_loaded_next(
    store: ConfigStore, runtime_log: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_file(store.home)
    before = path.read_bytes()
    added = run_cli("apikey", "add", "--name", "late", "--json").json()
    after = path.read_bytes()
    path.write_bytes(before)  # the gateway starts without the key
    # an editor writing in place: the first half, and the rest a moment later
    half = after[: after.index(b"name: late") + len(b"na")]
    probe = store.home / "half.yaml"
    probe.write_bytes(half)
    with pytest.raises(ConfigError):
        ConfigStore(probe).load()
    probe.unlink()

    original = ConfigStore._parse_yaml
    finished = threading.Event()

    def parse_then_finish_the_write(self: ConfigStore, raw: bytes, **options: Any) -> Any:
        try:
            return original(self, raw, **options)
        finally:
            if raw == half and not finished.is_set():
                with open(path, "r+b") as handle:  # the rest lands during the parse
                    handle.seek(len(half))
                    handle.write(after[len(half) :])
                finished.set()

    with gateway_in_thread(store) as (gateway, port):
        assert request(port, "GET", "/v1/models", added["key"])[0] == 401
        monkeypatch.setattr(ConfigStore, "_parse_yaml", parse_then_finish_the_write)
        with open(path, "r+b") as handle:
            handle.truncate(0)
            handle.write(half)
        assert finished.wait(10), "the gateway never read the half-written file"
        wait_until(
            lambda: gateway.state.config.key_by_id(added["id"]) is not None,
            5.0,
            "the completed file to be loaded",
        )
        assert request(port, "GET", "/v1/models", added["key"])[0] == 200
        assert (get_health(port) or {}).get("config") == "ok"
    assert len(errors_logged(runtime_log)) == 1  # the half file, once


def test_an_empty_or_deleted_file_keeps_the_last_good_configuration(
    store: ConfigStore, runtime_log: Records
) -> None:
    key = run_cli("apikey", "add", "--name", "kept", "--json").json()["key"]
    path = config_file(store.home)
    good = path.read_bytes()

    def config_state(port: int) -> str:
        return str((get_health(port) or {}).get("config"))

    with gateway_in_thread(store) as (gateway, port):
        before = gateway.state.config
        path.write_bytes(b"")  # as `: > config.yaml` or a crash mid-write leaves it
        wait_until(lambda: config_state(port) != "ok", 5.0, "/health to report the empty file")
        health = get_health(port) or {}
        assert health["config"] == "error: file is empty"
        assert health["status"] == "ok" and health["gateway_keys"] == {"total": 1, "enabled": 1}
        assert gateway.state.config is before
        assert request(port, "GET", "/v1/models", key)[0] == 200  # the key still works
        assert path.read_bytes() == b""  # and nothing wrote defaults over the file

        path.unlink()
        wait_until(lambda: config_state(port) == "error: file is missing", 5.0, "the deleted file")
        assert request(port, "GET", "/v1/models", key)[0] == 200
        assert not path.exists()

        path.write_bytes(good)
        wait_until(lambda: config_state(port) == "ok", 5.0, "the restored file to be loaded")
        assert request(port, "GET", "/v1/models", key)[0] == 200
    logged = errors_logged(runtime_log)
    assert len(logged) == 2  # once each, not once per poll
    assert logged[0] == f"{path}: file is empty" and logged[1] == f"{path}: file is missing"


def test_reloaded_limits_and_breaker_settings_apply_and_start_only_ones_are_reported(
    store: ConfigStore, runtime_log: Records
) -> None:
    key = run_cli("apikey", "add", "--name", "k", "--json").json()["key"]
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every attempt fails
    add = f"upstream add --type api-key --provider anthropic --name gone --base-url {dead}"
    account_id = run_cli(*add.split(), "--key", "sk-ant-api03-" + "d" * 40, "--json").json()["id"]
    big = json.dumps({"model": "claude-x", "max_tokens": 5, "messages": [], "pad": "x" * 3000})
    small = json.dumps(
        {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )
    with gateway_in_thread(store) as (gateway, port):
        assert request(port, "POST", "/v1/messages", key, big.encode())[0] != 413

        def change(document: dict[str, Any]) -> None:
            # the port is given on the command line (gateway_in_thread): no restart needed
            document["server"].update(max_body_bytes=2048, port=3999)
            document["logging"].update(format="text")
            document["routing"].update(failure_threshold=1, max_attempts=1)

        store.update(change)
        wait_until(lambda: (get_health(port) or {}).get("restart_needed"), 5.0, "the reload")
        health = get_health(port) or {}
        assert health["restart_needed"] == ["logging.format"]
        # applied: the body limit (413) and the breaker's threshold (open after one failure)
        assert request(port, "POST", "/v1/messages", key, big.encode())[0] == 413
        assert request(port, "POST", "/v1/messages", key, small.encode())[0] >= 500
        accounts = (get_health(port) or {})["accounts"]
        assert accounts[account_id]["circuit"] == "open"
    warnings = [r for r in runtime_log.records if r.levelno == logging.WARNING]
    assert [r.__dict__["settings"] for r in warnings] == ["logging.format"]
    assert "restart" in warnings[0].getMessage()


def test_reloaded_body_deadline_and_stream_keepalive_apply_to_new_connections(
    store: ConfigStore,
) -> None:
    with gateway_in_thread(store) as (gateway, port):
        store.update(
            lambda d: d["server"].update(body_timeout=5, body_min_rate=0, stream_keepalive=0.5)
        )
        limits = wait_until(
            lambda: gateway.server.limits if gateway.server.limits.body_timeout == 5 else None,
            5.0,
            "the reload",
        )
        assert (limits.body_min_rate, limits.stream_keepalive) == (0, 0.5)
        assert (get_health(port) or {}).get("restart_needed") == []


def test_a_reload_does_not_hold_up_requests(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_file(store.home)
    original = ConfigStore._parse_yaml
    parsing, release = threading.Event(), threading.Event()

    def slow_parse(self: ConfigStore, raw: bytes, **options: Any) -> Any:
        if b"# slow to parse" in raw:
            parsing.set()
            release.wait(20)
        return original(self, raw, **options)

    with gateway_in_thread(store) as (gateway, port):
        monkeypatch.setattr(ConfigStore, "_parse_yaml", slow_parse)
        path.write_bytes(path.read_bytes() + b"# slow to parse\n")
        try:
            assert parsing.wait(10), "the gateway never re-read the file"
            assert get_health(port) is not None  # answered while the parse is under way
        finally:
            release.set()
        wait_until(
            lambda: (get_health(port) or {}).get("config_digest") == store.current_digest(),
            5.0,
            "the slow file to be loaded",
        )


def test_health_says_what_the_gateway_serves_and_nothing_secret(store: ConfigStore) -> None:
    added = run_cli("apikey", "add", "--name", "first", "--json").json()
    run_cli("apikey", "disable", run_cli("apikey", "add", "--name", "x", "--json").json()["id"])
    upstream_key = "sk-ant-api03-" + "s" * 40
    add = "upstream add --type api-key --provider anthropic --name main --json"
    run_cli(*add.split(), "--key", upstream_key)
    stored = store.load()
    with gateway_in_thread(store) as (gateway, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health")
        raw = conn.getresponse().read().decode()
        conn.close()
    health = json.loads(raw)
    assert health["status"] == "ok" and health["version"] == __version__
    assert health["config"] == "ok"
    assert health["config_path"] == str(config_file(store.home).absolute())
    assert health["config_digest"] == store.current_digest()
    assert health["restart_needed"] == []
    assert health["gateway_keys"] == {"total": 2, "enabled": 1}
    assert health["upstreams"] == {"total": 1, "enabled": 1, "available": 1}
    started = datetime.fromisoformat(health["started_at"])
    assert abs(datetime.now(timezone.utc) - started) < timedelta(minutes=10)
    secrets = [added["key"], upstream_key, upstream_key[-12:], "sha256:", "enc:"]
    secrets += [k.hash for k in stored.gateway_keys] + [stored.upstream_accounts[0].api_key]
    assert not [s for s in secrets if s and s in raw]


def test_gateway_start_removes_a_crashed_writers_temporary_file(store: ConfigStore) -> None:
    leftover = store.home / ".config.k2j4h1.tmp"  # what a writer killed before its rename leaves
    leftover.write_text("gateway_keys: [{sealed: enc:v1:...}]\n")
    with gateway_in_thread(store):
        assert not leftover.exists()


# --- the real process ---------------------------------------------------------


def start_server(home: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = subprocess.Popen(
        server_command(port, *args),
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
            server_command(port),
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
