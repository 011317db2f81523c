"""The CLI and the running gateway: a command that changes the configuration
returns once the gateway serves the change (or says why it cannot tell), and
``status``/``server status``/``health`` report what the gateway itself says."""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    config_file,
    free_port,
    gateway_in_thread,
    get_health,
    point_config_at,
    run_cli,
    wait_until,
)

from llm_gateway import __version__
from llm_gateway.cli.context import Context
from llm_gateway.config.store import ConfigStore


@pytest.fixture
def served(home: Path) -> Iterator[tuple[Any, int, ConfigStore]]:
    """A gateway serving the CLI's config file, at the address that file names."""
    assert run_cli("apikey", "list").code == 0
    store = ConfigStore(config_file(home))
    with gateway_in_thread(store) as (gateway, port):
        point_config_at(store, port)
        wait_until(
            lambda: gateway.state.config.server.port == port, 5.0, "the gateway to load its address"
        )
        yield gateway, port, store


def status_of(port: int, key: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/v1/models", headers={"authorization": f"Bearer {key}"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


# --- a change waits for the running gateway -----------------------------------


def test_a_new_key_works_as_soon_as_apikey_add_returns(
    served: tuple[Any, int, ConfigStore],
) -> None:
    _, port, _ = served
    for name in ("first", "second", "third"):
        added = run_cli("apikey", "add", "--name", name, "--json")
        key = added.json()["key"]
        assert status_of(port, key) == 200  # at once: no retry, no sleep
        assert added.err == ""


def test_a_disabled_account_is_out_as_soon_as_the_command_returns(
    served: tuple[Any, int, ConfigStore],
) -> None:
    gateway, port, _ = served
    add = "upstream add --type api-key --provider anthropic --name main --json"
    account = run_cli(*add.split(), "--key", "sk-ant-api03-" + "k" * 40).json()["id"]
    assert gateway.state.config.account_by_id(account).enabled
    assert run_cli("upstream", "disable", account).code == 0
    assert (get_health(port) or {})["upstreams"]["enabled"] == 0


def test_a_change_with_no_gateway_running_says_so_at_once(home: Path) -> None:
    port = free_port()
    point_config_at(ConfigStore(config_file(home)), port)
    result = run_cli("apikey", "add", "--name", "a", "--json")
    assert result.code == 0 and "key" in result.json()
    assert result.err == (
        f"note: the gateway at 127.0.0.1:{port} is not running; it uses the change when it starts\n"
    )


def test_a_gateway_serving_another_file_is_named(home: Path, tmp_path: Path) -> None:
    other = ConfigStore(tmp_path / "elsewhere" / "config.yaml")
    other.load()
    with gateway_in_thread(other) as (_, port):
        point_config_at(ConfigStore(config_file(home)), port)
        result = run_cli("apikey", "add", "--name", "a")
    assert result.code == 0
    assert result.err == (
        f"note: the gateway at 127.0.0.1:{port} serves another config file "
        f"({other.path.absolute()}); this change is in {config_file(home)}\n"
    )


def test_a_gateway_that_does_not_load_the_change_is_reported_after_a_bounded_wait(
    served: tuple[Any, int, ConfigStore],
) -> None:
    from llm_gateway.cli import running

    gateway, port, store = served

    async def never() -> bool:
        return False

    gateway.reload = never  # a gateway that stopped watching its file
    store.update(lambda d: d["routing"].update(max_attempts=3))
    now = [0.0]
    err = io.StringIO()
    context = Context(store=store, environ={}, stdout=io.StringIO(), stderr=err)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    running.wait_for_load(context, clock=lambda: now[0], sleep=sleep)
    assert running.LOAD_WAIT <= now[0] < running.LOAD_WAIT + 1.0
    assert err.getvalue() == (
        f"warning: the gateway at 127.0.0.1:{port} did not load the change within 3 s\n"
    )


# --- status, server status, health ------------------------------------------------


def test_status_reports_what_the_running_gateway_serves(
    served: tuple[Any, int, ConfigStore],
) -> None:
    gateway, port, store = served
    run_cli("apikey", "add", "--name", "a")
    result = run_cli("status")
    assert result.code == 0, result.output
    lines = result.out.splitlines()
    assert lines[0] == f"Gateway at 127.0.0.1:{port}: running"
    assert lines[1].startswith(f"  version {__version__}, started 20")
    assert f"  serves: {store.path.absolute()}" in lines
    assert "  gateway keys in use: 1 enabled of 1" in lines
    assert "  upstream accounts in use: 0 enabled of 0, 0 available" in lines
    assert result.err == ""
    info = run_cli("server", "status", "--json").json()
    assert info["config"] == {"path": str(store.path), "error": None, "served": True}
    assert info["server"]["health"]["config_path"] == str(store.path.absolute())


def test_status_shows_a_config_the_gateway_refused_and_settings_awaiting_a_restart(
    served: tuple[Any, int, ConfigStore],
) -> None:
    gateway, port, store = served
    store.update(lambda d: d["server"].update(host="127.0.0.1", port=port, keepalive_timeout=9))
    store.update(lambda d: d["logging"].update(format="text"))
    wait_until(
        lambda: (get_health(port) or {}).get("restart_needed"), 5.0, "the reload to be reported"
    )
    assert "  restart needed for: logging.format" in run_cli("status").out.splitlines()
    text = store.path.read_text()
    store.path.write_text(text.replace("keepalive_timeout: 9", "keepalive_timeout: soon"))
    wait_until(
        lambda: (get_health(port) or {}).get("config") != "ok", 5.0, "the refusal to be reported"
    )
    # this command cannot read the file either, so it is told where the gateway is
    lines = run_cli("status", "--url", f"http://127.0.0.1:{port}").out.splitlines()
    refused = [line for line in lines if line.startswith("  configuration: error: line ")]
    assert len(refused) == 1 and "server.keepalive_timeout" in refused[0], lines
    assert refused[0].endswith("(the last good configuration stays in force)")
    assert lines[-1].startswith(f"Config: {store.path} (cannot read: {store.path}: line ")


def test_status_warns_when_the_gateway_serves_another_file(home: Path, tmp_path: Path) -> None:
    other = ConfigStore(tmp_path / "elsewhere" / "config.yaml")
    other.load()
    with gateway_in_thread(other) as (_, port):
        point_config_at(ConfigStore(config_file(home)), port)
        result = run_cli("status")
    assert result.code == 0
    assert result.err == (
        f"warning: the gateway serves {other.path.absolute()}, "
        f"but this command reads {config_file(home)}\n"
    )


def test_health_takes_a_url_and_needs_no_readable_config(home: Path, tmp_path: Path) -> None:
    home.mkdir()
    config_file(home).write_text("server: [not, a, mapping]\n")
    other = ConfigStore(tmp_path / "elsewhere" / "config.yaml")
    other.load()
    with gateway_in_thread(other) as (_, port):
        result = run_cli("health", "--url", f"http://127.0.0.1:{port}")
        assert (result.code, result.out) == (0, "healthy: status ok\n")
        report = run_cli("health", "--url", f"http://127.0.0.1:{port}/", "--json")
        assert report.json()["health"]["config_path"] == str(other.path.absolute())
        status = run_cli("status", "--url", f"http://127.0.0.1:{port}")
        assert status.out.splitlines()[0] == f"Gateway at 127.0.0.1:{port}: running"
    assert config_file(home).read_text() == "server: [not, a, mapping]\n"
    down = run_cli("health", "--url", f"http://127.0.0.1:{port}")
    assert (down.code, down.out) == (1, f"unhealthy: no gateway answers on 127.0.0.1:{port}\n")
    bad = run_cli("health", "--url", "127.0.0.1:3847")
    assert bad.code == 1 and "--url must look like http://127.0.0.1:3847" in bad.err
    assert json.loads(run_cli("health", "--url", f"http://127.0.0.1:{port}", "--json").out) == {
        "healthy": False,
        "health": None,
    }
