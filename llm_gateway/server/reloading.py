"""Keeping a running gateway on the configuration file as it is now.

Theory of operation: the runtime asks ``ConfigWatcher.due()`` every
``RELOAD_INTERVAL`` seconds; that is one ``stat`` on the event loop. When the
file's signature (inode, mtime, size) differs from the one last seen, or the
last attempt failed, ``read()`` runs on a worker thread: it takes the
signature *before* reading, reads the bytes, and parses and validates them
only when their digest differs from the last attempt's. So a write that lands
while a half-written file is being parsed changes the signature after the one
recorded and is read on the next poll, and a file that stays broken is not
parsed (nor logged) again and again. ``read()`` returns the new ``Loaded``,
the ``ConfigError`` that keeps the old configuration in force (a missing or
empty file is one, never the defaults), or None when nothing new is there.
Applying the result is the runtime's business, on the event loop.

``restart_needed`` compares the configuration the process started with and
the one it runs now on the settings read only at start (``START_ONLY``).
"""

from __future__ import annotations

from ..config.schema import Config
from ..config.store import ConfigStore, Loaded, Signature
from ..errors import ConfigError

__all__ = ["RELOAD_INTERVAL", "START_ONLY", "ConfigWatcher", "error_detail", "restart_needed"]

#: seconds between two looks at the config file's signature
RELOAD_INTERVAL = 0.1

#: settings a running gateway cannot take over: they are read only at start
START_ONLY = (
    "server.host",
    "server.port",
    "proxy.idle_connection_timeout",
    "proxy.max_connections_per_upstream",
    "logging.level",
    "logging.format",
    "ledger.enabled",
    "ledger.file",
    "ledger.retention_days",
    "ledger.batch_size",
    "ledger.flush_interval",
    "ledger.queue_size",
    "metrics.listen",
    "state",
)


def _setting(config: Config, dotted: str) -> object:
    value: object = config
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


def restart_needed(
    started: Config, current: Config, overridden: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """The start-only settings whose value in ``current`` is not the one in force
    (``overridden``: set on the command line, so the file's value does not count)."""
    return tuple(
        s
        for s in START_ONLY
        if s not in overridden and _setting(started, s) != _setting(current, s)
    )


def error_detail(store: ConfigStore, error: ConfigError) -> str:
    """``error`` without the file name in front (``/health`` reports the path apart)."""
    return str(error).removeprefix(f"{store.path}: ")


class ConfigWatcher:
    """What the running gateway last read from ``store``, and whether to read again."""

    def __init__(self, store: ConfigStore, loaded: Loaded):
        self.store = store
        self._signature: Signature | None = loaded.signature
        #: digest of the bytes of the last attempt, good or bad (None: no file)
        self._digest: str | None = loaded.digest
        self._failing = False

    def due(self) -> bool:
        """Cheap enough for the event loop: a ``stat``."""
        if self._failing:
            return True
        try:
            return self.store.signature() != self._signature
        except ConfigError:
            return True

    def read(self) -> Loaded | ConfigError | None:
        """Blocking (run it on a worker thread): the new configuration, why the
        file cannot be used, or None when its bytes are the ones last tried."""
        try:
            signature = self.store.signature()
        except ConfigError as error:
            return self._failed(None, None, error)
        digest = self.store.current_digest()
        if digest == self._digest:
            self._signature = signature
            return None
        try:
            loaded = self.store.load_current()
        except ConfigError as error:
            return self._failed(signature, digest, error)
        self._signature, self._digest, self._failing = loaded.signature, loaded.digest, False
        return loaded

    def _failed(
        self, signature: Signature | None, digest: str | None, error: ConfigError
    ) -> ConfigError:
        self._signature, self._digest, self._failing = signature, digest, True
        return error
