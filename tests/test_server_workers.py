"""``server start --workers N``: several processes serve one port and stop together."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, run_cli, server_command, subprocess_env, wait_until

from llm_gateway.server.workers import worker_count


def health(port: int) -> dict[str, Any] | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health", headers={"connection": "close"})
        data: dict[str, Any] = json.loads(conn.getresponse().read())
        return data
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def models_status(port: int, key: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/v1/models", headers={"authorization": f"Bearer {key}",
                                                   "connection": "close"})  # fmt: skip
        status = conn.getresponse().status
        return status
    finally:
        conn.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_two_workers_share_the_port_see_config_changes_and_stop_together(
    home: Path, signum: int
) -> None:
    port = free_port()
    process = subprocess.Popen(
        server_command(port, "--workers", "2"),
        env=subprocess_env(LLM_GATEWAY_HOME=str(home), LOG_LEVEL="warning"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_until(lambda: health(port), 15, "the gateway to answer")
        pids: set[int] = set()

        def both_workers_seen() -> bool:
            answer = health(port)
            if answer is not None:
                pids.add(answer["pid"])
            return len(pids) == 2

        wait_until(both_workers_seen, 15, "answers from two worker processes")
        assert process.pid not in pids  # the parent only supervises
        key = run_cli("apikey", "add", "--name", "w", "--json").json()["key"]
        # every worker picks the new key up from the file (each connection may
        # land on either worker)
        wait_until(
            lambda: all(models_status(port, key) == 200 for _ in range(20)),
            10,
            "the new key to work on every worker",
        )
        process.send_signal(signum)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert health(port) is None


def test_worker_count_parses_auto_and_numbers() -> None:
    assert worker_count("3") == 3
    assert worker_count("auto") >= 1
    with pytest.raises(ValueError):
        worker_count("0")


def test_workers_option_is_validated(home: Path) -> None:
    assert run_cli("server", "start", "--workers", "zero").code == 2


def _health_with_id(port: int) -> tuple[int, str] | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health", headers={"connection": "close"})
        response = conn.getresponse()
        pid = json.loads(response.read())["pid"]
        return int(pid), response.getheader("x-request-id") or ""
    except (OSError, ValueError, KeyError):
        return None
    finally:
        conn.close()


def test_each_worker_gives_its_requests_ids_of_its_own(home: Path) -> None:
    """The id prefix is chosen per worker: ids from two workers never share it."""
    port = free_port()
    process = subprocess.Popen(
        server_command(port, "--workers", "2"),
        env=subprocess_env(LLM_GATEWAY_HOME=str(home), LOG_LEVEL="warning"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ids: dict[int, set[str]] = {}
    try:

        def both_workers_answered() -> bool:
            answer = _health_with_id(port)
            if answer is not None:
                ids.setdefault(answer[0], set()).add(answer[1])
            return len(ids) == 2

        wait_until(both_workers_answered, 30, "answers from two worker processes")
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    everything = [request_id for group in ids.values() for request_id in group]
    assert all(request_id.startswith("req_") for request_id in everything)
    assert len(set(everything)) == len(everything)
    first, second = ({request_id[:16] for request_id in group} for group in ids.values())
    assert first.isdisjoint(second)  # "req_" and a random 12-hex-digit prefix per worker


def _start(home: Path, port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        server_command(port, *args),
        env=subprocess_env(LLM_GATEWAY_HOME=str(home), LOG_LEVEL="warning"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its workers can be killed with it
    )  # fmt: skip


def _refused(process: subprocess.Popen[str]) -> str:
    """The last stderr line of a start that must fail at once."""
    try:
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:  # it started after all: sharing the port
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 1, err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("second", [["--workers", "2"], []], ids=["workers", "single"])
def test_a_second_gateway_on_a_served_address_is_refused(home: Path, second: list[str]) -> None:
    port = free_port()
    first = _start(home, port, "--workers", "2")
    try:
        wait_until(lambda: health(port), 15, "the first gateway to answer")
        last_line = _refused(_start(home, port, *second))
        worker_pids: set[int] = set()

        def both_workers_seen() -> bool:
            answer = health(port)
            if answer is not None:
                worker_pids.add(answer["pid"])
            return len(worker_pids) == 2

        wait_until(both_workers_seen, 15, "both workers of the first gateway")
        assert any(
            last_line == f"error: a gateway already listens on 127.0.0.1:{port} (pid {pid})"
            for pid in worker_pids
        ), last_line
        assert health(port) is not None  # the first one is unaffected
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            first.wait(15)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()


def test_workers_do_not_share_a_port_with_another_program(home: Path) -> None:
    # Another program listening with SO_REUSEPORT, as a careless server might.
    stranger = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    stranger.bind(("127.0.0.1", 0))
    stranger.listen(8)
    port = stranger.getsockname()[1]
    try:
        # It accepts and says nothing: the start gives up after its probe timeout.
        last_line = _refused(_start(home, port, "--workers", "2"))
    finally:
        stranger.close()
    assert last_line == f"error: another program already listens on 127.0.0.1:{port}"
