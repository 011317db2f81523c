"""``server start`` with the defaults a first run gets: loopback only, logs in the
form the place they go to wants, and the open-file limit raised for long streams."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import resource
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PYTHON, free_port, get_health, subprocess_env, wait_until

from llm_gateway.config.schema import default_document, parse_config
from llm_gateway.logs import configure, resolve_format
from llm_gateway.server.capacity import connections_for

LOW_SOFT_LIMIT = 256


def start(home: Path, port: int, stderr: int, preexec: object = None) -> subprocess.Popen[bytes]:
    """``server start --port PORT``: no --host, and the config a first run writes."""
    return subprocess.Popen(
        [PYTHON, "-m", "llm_gateway", "server", "start", "--port", str(port)],
        env=subprocess_env(LLM_GATEWAY_HOME=str(home)),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        preexec_fn=preexec,  # type: ignore[arg-type]
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_default_config_listens_on_loopback_only() -> None:
    assert parse_config({}).server.host == "127.0.0.1"
    assert default_document()["server"]["host"] == "127.0.0.1"
    assert default_document()["logging"]["format"] == "auto"


def test_a_first_start_listens_on_loopback_logs_json_to_a_pipe_and_raises_the_file_limit(
    home: Path,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= LOW_SOFT_LIMIT:
        pytest.skip(f"the open-file hard limit is only {hard}")

    def low_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_SOFT_LIMIT, hard))

    port = free_port()
    process = start(home, port, subprocess.PIPE, low_soft_limit)
    try:

        def answered() -> object:
            if process.poll() is not None:
                pytest.fail(f"server exited early: {process.communicate()[1]!r}")
            return get_health(port)

        wait_until(answered, 20.0, "the server to answer /health")
        limits = Path(f"/proc/{process.pid}/limits")
        if limits.exists():
            line = next(x for x in limits.read_text().splitlines() if "open files" in x)
            assert line.split()[3] == line.split()[4]  # soft raised to the hard limit
        stop(process)
        err = process.stderr.read().decode() if process.stderr else ""
    finally:
        stop(process)
    assert process.returncode == 0, err
    assert f"llm-gateway listening on http://127.0.0.1:{port}" in err
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = [entry["msg"] for entry in entries]
    assert "listening" in messages  # JSON lines: stderr is a pipe, not a terminal
    raised = next(m for m in messages if m.startswith("open-file limit"))
    expected = hard if hard != resource.RLIM_INFINITY else None
    if expected is not None:
        assert raised == (
            f"open-file limit raised from {LOW_SOFT_LIMIT} to {expected}: room for "
            f"{connections_for(expected)} concurrent client connections, "
            "each with its upstream connection"
        )
    assert "Traceback" not in err


def test_on_a_terminal_the_logs_are_text(home: Path) -> None:
    port = free_port()
    leader, follower = pty.openpty()
    process = start(home, port, follower)
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 20
        while b"llm-gateway listening" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:  # the server exited: the terminal is gone
                    break
    finally:
        stop(process)
        os.close(leader)
    text = seen.decode(errors="replace")
    assert '{"ts"' not in text, text
    assert any(" INFO    listening" in line for line in text.splitlines()), text


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("fmt", "terminal", "expected"),
    [
        ("auto", True, "text"),
        ("auto", False, "json"),
        ("json", True, "json"),
        ("text", False, "text"),
    ],
)
def test_log_format_auto_follows_the_stream_and_config_forces_either(
    fmt: str, terminal: bool, expected: str
) -> None:
    stream = FakeTerminal() if terminal else io.StringIO()
    assert resolve_format(fmt, stream) == expected
    logger = logging.getLogger("llm_gateway")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    configure("info", fmt, {}, stream)
    try:
        logging.getLogger("llm_gateway.test").info("hello", extra={"status": 200})
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
    line = stream.getvalue().strip()
    if expected == "json":
        assert json.loads(line)["msg"] == "hello"
    else:
        assert line.endswith("INFO    hello  status=200")
