"""Sending the requests: a few checked ones with urllib, then load with wrk.

Theory of operation: ``probe`` sends a handful of requests one at a time
(urllib, proxies disabled) and runs ``checks.check_response`` on each: this is
where a wrong body is caught in full detail. ``run_wrk`` then runs wrk pinned
to the load generator's core with ``wrk_post.lua``, which POSTs the same body
with the same headers and counts responses that are not 2xx or lack the
format's marker strings; its ``done()`` prints one JSON line that becomes a
``WrkResult``, together with wrk's own CPU time (from ``wait4``), so the load
side's cost per request can be set against the gateway's.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from checks import check_response

__all__ = ["WrkResult", "probe", "run_wrk"]

LUA = Path(__file__).resolve().parent / "wrk_post.lua"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_s: float
    socket_errors: int
    non2xx: int
    bad_bodies: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    #: wrk's own CPU time (user + system)
    cpu_s: float
    raw: dict[str, float]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non2xx + self.bad_bodies


def probe(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    client: str,
    stream: bool,
    model: str,
    count: int = 3,
) -> list[str]:
    """Send ``count`` requests and check each answer; the problems found (empty: all good)."""
    problems: list[str] = []
    for _ in range(count):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=30) as response:
                status = response.status
                content_type = response.headers.get("content-type", "")
                data = response.read()
        except urllib.error.HTTPError as exc:
            status, content_type, data = exc.code, exc.headers.get("content-type", ""), exc.read()
        except OSError as exc:
            problems.append(f"request failed: {exc}")
            continue
        problems += check_response(client, stream, model, status, content_type, data)
    return problems


def run_wrk(
    url: str,
    body_file: Path,
    headers: dict[str, str],
    markers: tuple[str, ...],
    *,
    connections: int,
    duration: int,
    cpu: int,
    timeout_s: int = 10,
) -> WrkResult:
    args = [str(body_file)]
    args += [f"H:{name}: {value}" for name, value in headers.items()]
    args += [f"M:{marker}" for marker in markers]
    command = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}"]
    command += [f"-d{duration}s", f"--timeout={timeout_s}s", "-s", str(LUA), url, "--", *args]
    # taskset execs wrk, so the child's resource usage (wait4) is wrk's CPU time.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH-JSON ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stdout}\n{stderr}")
    raw = json.loads(line.removeprefix("BENCH-JSON "))
    socket_errors = sum(
        int(raw[k]) for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=raw["duration_us"] / 1e6,
        socket_errors=socket_errors,
        non2xx=int(raw["non2xx"]),
        bad_bodies=int(raw["bad_bodies"]),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        cpu_s=usage.ru_utime + usage.ru_stime,
        raw=raw,
    )
