"""The sum over ``--workers`` processes: one snapshot file per worker.

Theory of operation: with several workers, each writes its registry's
snapshot as JSON to ``<pid>.json`` in a directory of the gateway's home
(atomically: a temporary file, then a rename) once a second and just before
it answers a scrape; the worker that answers reads every file whose process
is alive and adds them up (``registry.merge``), so a scrape returns the
whole gateway's totals whichever worker takes it. Files of processes that
are gone are removed; a replaced worker starts from zero, which Prometheus
reads as a counter reset.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .registry import Snapshot

__all__ = ["PUBLISH_INTERVAL", "SharedSnapshots"]

#: seconds between two snapshot files of one worker
PUBLISH_INTERVAL = 1.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedSnapshots:
    def __init__(self, directory: Path, pid: int | None = None):
        self.directory = directory
        self.pid = os.getpid() if pid is None else pid

    def publish(self, snapshot: Snapshot) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{self.pid}.json"
        temporary = self.directory / f".{self.pid}.json.tmp"
        temporary.write_text(json.dumps(snapshot), encoding="utf-8")
        os.replace(temporary, final)

    def others(self) -> list[Snapshot]:
        """The snapshots of the other live workers (dead ones' files removed)."""
        found: list[Snapshot] = []
        if not self.directory.is_dir():
            return found
        for path in self.directory.glob("*.json"):
            if not path.stem.isdigit() or int(path.stem) == self.pid:
                continue
            if not _alive(int(path.stem)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            try:
                found.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # replaced or removed while read: the next scrape has it
        return found

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / f"{self.pid}.json").unlink()
