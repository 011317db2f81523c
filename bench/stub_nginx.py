"""The fast upstream stub: nginx serving the fixed answers of ``payloads``.

Theory of operation: ``NginxStub.start`` writes the six answers (OpenAI,
Anthropic and Gemini, JSON and SSE) as files into a scratch directory, writes an nginx
configuration beside them, and runs nginx in the foreground (``daemon off``)
pinned to the load generator's core. Each API path (``/openai/json/v1/chat/
completions``, ``/anthropic/sse/v1/messages``, ``/gemini/sse/v1beta/models/
gemini-bench-sse:streamGenerateContent``, ...) answers every method with
its file: nginx's static module refuses POST, so the location returns 405 and
``error_page 405 =200`` redirects internally (as a GET) to the file, which is
then sent with status 200 and the content type its extension maps to
(``application/json`` or ``text/event-stream``). The request body is read and
discarded; connections stay alive for a practically unlimited number of
requests, as a real API's do.

One worker process is enough: static files from the page cache cost nginx a
few microseconds each, and the figures recorded per row (``cpu_ms_per_req``
of the worker, and the core's utilisation) show it never runs out of CPU.

Streams are sent with ``sendfile off`` and small output buffers (256 bytes by
default, ``sse_write_bytes``): nginx then writes each stream in 15 to 26
pieces (one ``writev`` per buffer, cutting events anywhere, as TCP may), so
the gateway sees a stream arrive over many reads, as from an API streaming
its tokens, instead of in one ``sendfile`` of the whole body
(``sse_write_bytes=0``).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from payloads import FORMATS, GEMINI, MODES, api_path, stub_answer, stub_location
from procstat import children

__all__ = ["NginxStub"]

_CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {root}/nginx.pid;
error_log {root}/error.log warn;
worker_rlimit_nofile {nofile};
events {{
    worker_connections 16384;
    multi_accept on;
}}
http {{
    access_log off;
    server_tokens off;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    client_body_buffer_size 256k;
    client_max_body_size 40m;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    etag off;
    types {{
        application/json json;
        text/event-stream sse;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=8192;
{locations}
        location /files/ {{
            internal;
            alias {root}/files/;
        }}
        location ~ ^/files/.*\\.sse$ {{
            internal;
            root {root};
{sse_writes}            add_header cache-control no-cache;
        }}
    }}
}}
"""

_LOCATION = """\
        location = {path} {{
            return 405;
            error_page 405 =200 /files/{name};
        }}
"""


class NginxStub:
    """nginx on 127.0.0.1:``port`` with its files under ``root``, pinned to ``cpu``."""

    def __init__(self, root: Path, port: int, cpu: int, *, sse_write_bytes: int = 256):
        self.root = root
        self.port = port
        self.cpu = cpu
        self.sse_write_bytes = sse_write_bytes
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, upstream: str, mode: str) -> str:
        """The full URL of one answer (what a direct request POSTs to)."""
        query = "?alt=sse" if upstream == GEMINI and mode == "sse" else ""
        return f"{self.base_url(upstream, mode)}{api_path(upstream, mode)}{query}"

    def base_url(self, upstream: str, mode: str) -> str:
        """An upstream account's base URL for one answer."""
        return f"http://127.0.0.1:{self.port}{stub_location(upstream, mode)}"

    def start(self) -> None:
        files = self.root / "files"
        files.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)
        locations = []
        for upstream in FORMATS:
            for mode in MODES:
                name = f"{upstream}-{mode}.{mode}"
                (files / name).write_bytes(stub_answer(upstream, mode))
                path = stub_location(upstream, mode) + api_path(upstream, mode)
                locations.append(_LOCATION.format(path=path, name=name))
        user = "user root root;" if os.geteuid() == 0 else ""
        config = _CONFIG.format(
            user=user,
            root=self.root,
            port=self.port,
            locations="".join(locations),
            sse_writes=_sse_writes(self.sse_write_bytes),
            nofile=_nofile_limit(),
        )
        (self.root / "nginx.conf").write_text(config)
        command = ["taskset", "-c", str(self.cpu), "nginx", "-p", str(self.root)]
        command += ["-c", str(self.root / "nginx.conf"), "-e", str(self.root / "error.log")]
        log = (self.root / "stdout.log").open("wb")
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def worker_pids(self) -> list[int]:
        if self._process is None:
            return []
        return children(self._process.pid)

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGQUIT)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def _wait_ready(self) -> None:
        assert self._process is not None
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 10
        probe = urllib.request.Request(self.url("openai", "json"), data=b"{}", method="POST")
        while True:
            if self._process.poll() is not None:
                log = (self.root / "error.log").read_text(errors="replace")
                raise RuntimeError(f"nginx exited with {self._process.returncode}:\n{log}")
            try:
                with opener.open(probe, timeout=2) as response:
                    response.read()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def _nofile_limit() -> int:
    """Descriptors nginx may ask for: at most the hard limit (asking more only logs an alert)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 30000 if hard == resource.RLIM_INFINITY else min(30000, hard)


def _sse_writes(write_bytes: int) -> str:
    if write_bytes <= 0:  # the whole stream in one sendfile
        return "            sendfile on;\n"
    lines = ("sendfile off;", f"output_buffers 64 {write_bytes};", "postpone_output 0;")
    return "".join(f"            {line}\n" for line in lines)
