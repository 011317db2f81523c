"""Shared helpers: an isolated gateway home, an in-process CLI runner, subprocess
environments, free loopback ports, polling with deadlines, and a raw HTTP/1.1
client that lets a test control (and see) every byte on the wire.

Nothing here touches ``~/.llm-gateway``: the ``home`` fixture points
``LLM_GATEWAY_HOME`` at a temporary directory, and every helper that starts a
process hands it that environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from llm_gateway.cli.context import Context
from llm_gateway.cli.main import main
from llm_gateway.config.store import ConfigStore, resolve_config_path

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")

#: environment variables that would leak the developer's own setup into a test
_ISOLATED_VARS = ("LLM_GATEWAY_SECRET_KEY", "LOG_LEVEL", "LLM_GATEWAY_HOME")


# --- the gateway's home -------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, not yet existing gateway home; ``LLM_GATEWAY_HOME`` points at it."""
    for name in _ISOLATED_VARS:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "gateway-home"
    monkeypatch.setenv("LLM_GATEWAY_HOME", str(path))
    return path


def config_file(home: Path) -> Path:
    return home / "config.yaml"


# --- running the CLI ----------------------------------------------------------


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        assert self.code == 0, self.output
        return json.loads(self.out)


def run_cli(*args: str, stdin: str = "", env: Mapping[str, str | None] | None = None) -> CliResult:
    """``llm-gateway ARGS`` in-process, with everything it prints captured.

    ``env`` adds to (or, with None values, removes from) the current environment.
    argparse writes ``--help`` and usage errors to ``sys.stdout``/``sys.stderr``;
    those are captured too.
    """
    environ = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    if "LLM_GATEWAY_HOME" not in environ and not any(a.startswith("--config") for a in args):
        raise AssertionError("use the home fixture (or --config): never touch ~/.llm-gateway")
    out, err = io.StringIO(), io.StringIO()
    context = Context(
        store=ConfigStore(resolve_config_path(None, environ)),
        environ=environ,
        stdout=out,
        stderr=err,
        stdin=io.StringIO(stdin),
    )
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args), context=context)
    return CliResult(code, out.getvalue(), err.getvalue())


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The current environment, with this checkout importable and ``overrides`` applied."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(overrides)
    return env


PYTHON = sys.executable


def server_command(port: int, *args: str) -> list[str]:
    """``server start`` of this checkout on 127.0.0.1:``port``, ``args`` appended."""
    return [PYTHON, "-m", "llm_gateway", "server", "start", "--host", "127.0.0.1",
            "--port", str(port), *args]  # fmt: skip


# --- waiting ------------------------------------------------------------------


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


async def async_wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run one async scenario; a hang fails the test instead of stalling the run."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


# --- ports --------------------------------------------------------------------


def free_port() -> int:
    """A loopback port that nothing listens on (at the moment of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- a gateway running in this process -----------------------------------------


@contextlib.contextmanager
def gateway_in_thread(
    store: ConfigStore, environ: Mapping[str, str] | None = None
) -> Iterator[tuple[Any, int]]:
    """A real ``Gateway`` on 127.0.0.1 (port 0), its event loop in a background thread.

    The calling thread stays free to run CLI commands (which talk to the
    gateway over HTTP) and to watch ``gateway.state``.
    """
    from llm_gateway.runtime import Gateway

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway-loop", daemon=True)
    thread.start()

    async def start() -> tuple[Any, int]:
        gateway = Gateway(store, dict(os.environ) if environ is None else environ)
        ports = await gateway.start("127.0.0.1", 0)
        return gateway, ports[0]

    try:
        gateway, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        try:
            yield gateway, port
        finally:
            asyncio.run_coroutine_threadsafe(gateway.stop(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def point_config_at(store: ConfigStore, port: int) -> None:
    """Make the config's server address 127.0.0.1:``port`` (what status/health probe)."""
    store.update(lambda d: d["server"].update(host="127.0.0.1", port=port))


def get_health(port: int) -> dict[str, Any] | None:
    """The /health JSON, or None when nothing answers yet."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        data: dict[str, Any] = json.loads(body)
        return data
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


# --- a raw HTTP/1.1 client ----------------------------------------------------


def raw_request(
    method: str,
    path: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    host: bool = True,
    content_length: bool = True,
) -> bytes:
    """The bytes of one HTTP/1.1 request, exactly as given."""
    lines = [f"{method} {path} HTTP/1.1"]
    if host:
        lines.append("Host: 127.0.0.1")
    lines.extend(f"{name}: {value}" for name, value in headers)
    if body and content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class RawResponse:
    status: int
    reason: str
    #: header names lower-cased, in the order received
    headers: list[tuple[str, str]]
    #: the message body after removing any chunked framing
    body: bytes
    #: the chunk payloads in arrival order (chunked responses only)
    chunks: list[bytes]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def json(self) -> Any:
        assert self.header("content-type") == "application/json"
        return json.loads(self.body)


async def read_head(reader: asyncio.StreamReader) -> RawResponse:
    """Read a status line and headers; the body is left on the stream."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[:-2]
    version, status, *reason = lines[0].split(" ", 2)
    assert version == "HTTP/1.1", lines[0]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return RawResponse(int(status), reason[0] if reason else "", headers, b"", [])


async def read_chunk(reader: asyncio.StreamReader) -> bytes | None:
    """One chunk of a chunked body; None for the last (zero-size) chunk."""
    size_line = await reader.readuntil(b"\r\n")
    size = int(size_line.split(b";")[0], 16)
    if size == 0:
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, if any
            pass
        return None
    data = await reader.readexactly(size)
    assert await reader.readexactly(2) == b"\r\n"
    return data


async def read_body(reader: asyncio.StreamReader, response: RawResponse) -> RawResponse:
    if (response.header("transfer-encoding") or "").lower() == "chunked":
        while (chunk := await read_chunk(reader)) is not None:
            response.chunks.append(chunk)
        response.body = b"".join(response.chunks)
    elif response.header("content-length") is not None:
        response.body = await reader.readexactly(int(response.header("content-length") or 0))
    else:
        response.body = await reader.read()
    return response


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    return await read_body(reader, await read_head(reader))


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def exchange(port: int, data: bytes) -> RawResponse:
    """Send ``data`` on a new connection and read one response."""
    reader, writer = await connect(port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_response(reader)
    finally:
        writer.close()


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """True when the server closes the connection (EOF or reset) within ``timeout``."""
    try:
        data = await asyncio.wait_for(reader.read(65536), timeout)
    except ConnectionResetError:
        return True
    return data == b""
