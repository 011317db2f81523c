"""A real Redis server for the tests of ``state.backend: redis``.

``redis_server`` starts Debian's ``redis-server`` (or ``valkey-server``) on a
free loopback port, without persistence, and stops it by its PID; a test may
stop and start it again on the same port (Redis killed mid-run). When
``LLM_GATEWAY_TEST_REDIS_URL`` names a running server, tests that only need
one use it (``redis_url``) and each gets its own key prefix. Without a server
binary and without that variable, the tests are skipped with a message.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port

ENV_URL = "LLM_GATEWAY_TEST_REDIS_URL"


def server_binary() -> str | None:
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None
        )
        if found:
            return found
    return None


def answers(port: int) -> bool:
    """True when a Redis on 127.0.0.1:``port`` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, stopped and started by PID."""

    def __init__(self, binary: str, directory: Path):
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.binary} did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """Gone at once, as a crashed server (SIGKILL, by PID)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own (needed to kill it); skipped without a binary."""
    binary = server_binary()
    if binary is None:
        pytest.skip("no redis-server or valkey-server on this machine (apt install redis-server)")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(binary, directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """``LLM_GATEWAY_TEST_REDIS_URL``, or a server of this test's own."""
    given = os.environ.get(ENV_URL)
    if given:
        yield given
        return
    binary = server_binary()
    if binary is None:
        pytest.skip(f"no redis-server on this machine and {ENV_URL} is not set")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(binary, directory)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
