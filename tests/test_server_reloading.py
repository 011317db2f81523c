"""When the running gateway re-reads its config file, and what needs a restart:
``server/reloading.py`` driven directly, without a server."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from llm_gateway.config.network import ServerConfig
from llm_gateway.config.schema import Config
from llm_gateway.config.store import ConfigStore, Loaded
from llm_gateway.config.telemetry import LoggingConfig
from llm_gateway.errors import ConfigError
from llm_gateway.server.reloading import ConfigWatcher, restart_needed


def watched(tmp_path: Path) -> tuple[ConfigStore, ConfigWatcher]:
    store = ConfigStore(tmp_path / "config.yaml")
    store.load()
    return store, ConfigWatcher(store, store.load_current())


def test_nothing_is_due_until_the_file_changes(tmp_path: Path) -> None:
    store, watcher = watched(tmp_path)
    assert not watcher.due()
    store.update(lambda d: d["server"].update(port=4000))
    assert watcher.due()
    loaded = watcher.read()
    assert isinstance(loaded, Loaded) and loaded.config.server.port == 4000
    assert not watcher.due()


def test_the_same_bytes_again_are_not_a_reload(tmp_path: Path) -> None:
    store, watcher = watched(tmp_path)
    os.utime(store.path, ns=(1, 1))  # touched, not changed
    assert watcher.due()
    assert watcher.read() is None
    assert not watcher.due()


def test_a_broken_file_is_reported_once_and_read_again_until_it_is_fixed(tmp_path: Path) -> None:
    store, watcher = watched(tmp_path)
    good = store.path.read_bytes()
    store.path.write_bytes(b"server: [")
    error = watcher.read()
    assert isinstance(error, ConfigError)
    assert watcher.due()  # retried on every poll...
    assert watcher.read() is None  # ...but the same bytes are not parsed (or logged) again
    store.path.write_bytes(good)
    assert isinstance(watcher.read(), Loaded)
    assert not watcher.due()


def test_restart_needed_names_the_start_only_settings_that_changed() -> None:
    started = Config()
    assert restart_needed(started, started) == ()
    moved = replace(
        started,
        server=ServerConfig(port=4000, max_body_bytes=10, keepalive_timeout=5.0),
        logging=LoggingConfig(format="text"),
    )
    assert restart_needed(started, moved) == ("server.port", "logging.format")
    assert restart_needed(started, moved, frozenset({"server.port"})) == ("logging.format",)
