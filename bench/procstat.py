"""What the kernel says about a process and the CPUs: /proc readers.

Theory of operation: every figure the benchmark reports about cost comes from
here, read before and after a measured run:

* ``cpu_seconds(pid)``: user + system CPU time of a process (``utime`` and
  ``stime`` of ``/proc/PID/stat``, in clock ticks, usually 10 ms), all its
  threads included;
* ``memory_kib(pid)``: resident set now (``VmRSS``) and its peak since the
  process started (``VmHWM``) from ``/proc/PID/status``;
* ``cpu_times()``: busy and total ticks of each CPU from ``/proc/stat``, to
  tell how loaded a core was (the load generator's core must not be
  saturated, and work by other processes on the gateway's core is noise).
* ``RssSampler``: a thread that samples ``VmRSS`` while a run goes on, for
  the resident set *under load*.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

__all__ = ["CpuTimes", "RssSampler", "children", "cpu_seconds", "cpu_times", "memory_kib"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces: split after its closing paren.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                values[name] = int(value.split()[0])
    return values["VmRSS"], values["VmHWM"]


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (scans /proc; no CONFIG_PROC_CHILDREN needed)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry))
    return sorted(found)


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Per CPU: (busy ticks, total ticks) since boot."""

    per_cpu: tuple[tuple[int, int], ...]

    def busy_fraction(self, later: CpuTimes, cpu: int) -> float:
        busy0, total0 = self.per_cpu[cpu]
        busy1, total1 = later.per_cpu[cpu]
        return (busy1 - busy0) / max(1, total1 - total0)

    def busy_seconds(self, later: CpuTimes, cpu: int) -> float:
        return (later.per_cpu[cpu][0] - self.per_cpu[cpu][0]) / CLOCK_TICKS


def cpu_times() -> CpuTimes:
    rows = []
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            ticks = [int(v) for v in values]
            idle = ticks[3] + ticks[4]  # idle + iowait
            total = sum(ticks[:8])  # guest time is already counted in user
            rows.append((total - idle, total))
    return CpuTimes(tuple(rows))


class RssSampler:
    """Samples a process's VmRSS every ``interval`` seconds until stopped; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                rss, _ = memory_kib(self.pid)
            except (OSError, KeyError):
                return
            self.peak_kib = max(self.peak_kib, rss)
            if self._stop.wait(self.interval):
                return
