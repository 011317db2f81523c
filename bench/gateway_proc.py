"""The gateway under test, built and run as users run it.

Theory of operation: ``build_zipapp`` runs the repository's
``build_zipapp.py --output ...`` (installing h11, certifi and PyYAML into the
building interpreter first if it lacks them, as the README's set-up does).
``Gateway`` then works in a scratch ``LLM_GATEWAY_HOME``:

1. ``configure`` writes the settings the CLI has no command for (listen
   address, connection limits, ``logging.level: warning`` so access logs do
   not dominate) as a JSON document, which is valid YAML; every CLI write
   afterwards keeps them. Upstream accounts and the gateway key are added
   with ``upstream add`` and ``apikey add --json``, exactly as documented.
2. ``start`` runs ``python3 llm-gateway.pyz server start`` under
   ``taskset -c CPU`` (``taskset`` execs, so the process id is the
   gateway's) with proxy variables and ``LOG_LEVEL`` removed from its
   environment, and waits for ``GET /health``.
3. ``stop`` sends SIGTERM (graceful shutdown) and waits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["Gateway", "build_zipapp", "free_port"]

REPO = Path(__file__).resolve().parent.parent
_DROPPED_ENV = (
    "LOG_LEVEL",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def build_zipapp(output: Path, python: str = sys.executable, extras: tuple[str, ...] = ()) -> Path:
    """Build ``llm-gateway.pyz`` from this checkout at ``output`` (from ``vendor/``:
    nothing needs to be installed; ``extras``: ``--with`` each, e.g. ``redis``)."""
    with_extras = [arg for extra in extras for arg in ("--with", extra)]
    subprocess.run(
        [python, str(REPO / "build_zipapp.py"), "--output", str(output), *with_extras],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return output


class Gateway:
    """One gateway process with its own home directory."""

    def __init__(self, pyz: Path, home: Path, port: int, cpu: int, python: str = sys.executable):
        self.pyz = pyz
        self.home = home
        self.port = port
        self.cpu = cpu
        self.python = python
        self.key = ""
        self.pid = 0
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path = home / "gateway.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env["LLM_GATEWAY_HOME"] = str(self.home)
        return env

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [self.python, str(self.pyz), *args],
            env=self.env(),
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"llm-gateway {args[0]} {args[1]} failed: {done.stderr.decode()}")
        return done.stdout.decode()

    def configure(
        self,
        upstreams: list[tuple[str, str, str, str]],
        *,
        max_connections: int | None = None,
        max_connections_per_upstream: int | None = None,
        log_level: str = "warning",
        extra: dict[str, object] | None = None,
        key_options: tuple[str, ...] = (),
    ) -> None:
        """Settings, then ``(name, provider, base_url, model)`` accounts, then a gateway key
        (made with ``key_options``, e.g. ``("--rpm", "1000000")``).

        The connection limits are the gateway's defaults (sized from the open-file
        limit) unless given. Logging is at ``warning`` unless asked: at ``info``
        every request writes an access log line (to the gateway's log file here).
        ``extra`` adds top-level sections (``ledger``, ``metrics``, ``prices``...)."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        server: dict[str, Any] = {"host": "127.0.0.1", "port": self.port}
        proxy: dict[str, Any] = {}
        if max_connections is not None:
            server["max_connections"] = max_connections
        if max_connections_per_upstream is not None:
            proxy["max_connections_per_upstream"] = max_connections_per_upstream
        settings = {
            "server": server,
            "proxy": proxy,
            "logging": {"level": log_level, "format": "text"},
            **(extra or {}),
        }
        config = self.home / "config.yaml"
        config.write_text(json.dumps(settings, indent=2) + "\n")
        config.chmod(0o600)
        for name, provider, base_url, model in upstreams:
            self.cli(
                "upstream", "add", "--type", "api-key", "--provider", provider,
                "--name", name, "--base-url", base_url, "--models", model, "--key", "-",
                stdin=f"sk-bench-{name}\n",
            )  # fmt: skip
        created = json.loads(self.cli("apikey", "add", "--name", "bench", "--json", *key_options))
        self.key = created["key"]

    def start(self, timeout: float = 20.0) -> None:
        """Start, and wait up to ``timeout`` seconds for ``GET /health``."""
        command = ["taskset", "-c", str(self.cpu), self.python, str(self.pyz), "server", "start"]
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command, env=self.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.pid = self._process.pid
        self._wait_healthy(timeout)

    def stop(self) -> int | None:
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        code = self._process.returncode
        self._process = None
        return code

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _wait_healthy(self, timeout: float) -> None:
        assert self._process is not None
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the gateway exited with {self._process.returncode}; "
                    f"see {self.log_path}:\n{self.log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                with opener.open(f"{self.url}/health", timeout=2) as response:
                    if json.load(response).get("status") == "ok":
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the gateway did not answer /health within {timeout:g} s; see {self.log_path}"
                )
            time.sleep(0.1)
