"""Where the configuration lives on disk, and how it is changed safely.

Theory of operation:

* Reading: ``load()`` parses the YAML with ``yaml.safe_load`` and validates it
  with ``schema.parse_config``. Any problem raises ``ConfigError`` naming the
  file and the line (from the YAML parser, or found by walking the YAML node
  tree to the field ``SchemaError`` names). A file that does not exist yet is
  created with the defaults (directory 0700, file 0600).
* Writing: ``update(mutate)`` takes an exclusive ``flock`` on a lock file
  beside the config (not the config itself: renames replace that inode),
  re-reads the file *inside* the lock, lets ``mutate`` edit the plain data,
  validates the result, and writes it atomically (temporary file in the same
  directory, fsync, rename, fsync of the directory). Two processes updating at
  once therefore serialise, and neither loses the other's change. An invalid
  file is never overwritten: the re-read fails first.
* Watching: ``signature()`` is a cheap ``stat`` tuple; the server polls it and
  reloads when it changes (see ``server/runtime.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..errors import ConfigError
from .schema import Config, SchemaError, default_document, parse_config

__all__ = ["ConfigStore", "resolve_config_path"]

HOME_ENV = "LLM_GATEWAY_HOME"
CONFIG_NAME = "config.yaml"
LOCK_NAME = ".config.lock"

T = TypeVar("T")


def resolve_config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """``--config PATH`` wins, then ``$LLM_GATEWAY_HOME/config.yaml``, then ``~/.llm-gateway``."""
    if explicit:
        return Path(explicit).expanduser()
    home = environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / CONFIG_NAME
    return Path.home() / ".llm-gateway" / CONFIG_NAME


@dataclass(frozen=True, slots=True)
class Loaded:
    config: Config
    document: dict[str, Any]
    signature: tuple[int, int, int] | None


class ConfigStore:
    """The configuration file at ``path`` and its siblings (lock, secret key)."""

    def __init__(self, path: Path):
        self.path = path
        self.home = path.parent

    # -- reading ----------------------------------------------------------------

    def load(self, *, create: bool = True) -> Config:
        """The validated configuration; creates the default file on first use."""
        if create and not self.path.exists():
            self.update(lambda document: None)
        return self._read().config

    def read_document(self) -> dict[str, Any]:
        """The validated file as plain data (for views that need raw fields)."""
        if not self.path.exists():
            self.load()
        return self._read().document

    def signature(self) -> tuple[int, int, int] | None:
        """A value that changes whenever the file is replaced or edited."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror}") from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def load_with_signature(self) -> tuple[Config, tuple[int, int, int] | None]:
        loaded = self._read()
        return loaded.config, loaded.signature

    def _read(self) -> Loaded:
        try:
            with open(self.path, "rb") as handle:
                signature_before = os.fstat(handle.fileno())
                raw = handle.read()
        except FileNotFoundError:
            return Loaded(parse_config(default_document()), default_document(), None)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror}") from None
        document = self._parse_yaml(raw)
        try:
            config = parse_config(document)
        except SchemaError as exc:
            raise ConfigError(self._locate(raw, exc)) from None
        signature = (
            signature_before.st_ino,
            signature_before.st_mtime_ns,
            signature_before.st_size,
        )
        return Loaded(config, document, signature)

    def _parse_yaml(self, raw: bytes) -> dict[str, Any]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{self.path}: not UTF-8 text (byte {exc.start})") from None
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ConfigError(f"{self.path}: {where}: {problem}") from None
        if document is None:
            return default_document()
        if not isinstance(document, dict):
            raise ConfigError(f"{self.path}: line 1: the top level must be a mapping")
        return document

    def _locate(self, raw: bytes, error: SchemaError) -> str:
        line = _line_of(raw.decode("utf-8"), error.path)
        where = f"line {line}: " if line else ""
        return f"{self.path}: {where}{error}"

    # -- writing ----------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive cross-process lock for read-modify-write cycles."""
        try:
            self.ensure_home()
            fd = os.open(self.home / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot use this location: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def update(self, mutate: Callable[[dict[str, Any]], T]) -> T:
        """Re-read under the lock, let ``mutate`` edit the data, validate, write atomically.

        ``mutate`` may raise to abort; nothing is written then.
        """
        with self.locked():
            document = self._read().document if self.path.exists() else default_document()
            result = mutate(document)
            try:
                parse_config(document)
            except SchemaError as exc:
                raise ConfigError(f"{self.path}: refusing to write: {exc}") from None
            try:
                self._write(document)
            except OSError as exc:
                raise ConfigError(f"{self.path}: cannot write: {exc.strerror}") from None
            return result

    def ensure_home(self) -> None:
        if not self.home.exists():
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _write(self, document: dict[str, Any]) -> None:
        text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
        fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".tmp", dir=self.home)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.home, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _line_of(text: str, dotted: str) -> int | None:
    """The 1-based line of the node a schema path such as ``a.b[2].c`` names."""
    try:
        node: Any = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line: int | None = None
    for part in _path_parts(dotted):
        if isinstance(part, int) and isinstance(node, yaml.SequenceNode):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = int(node.start_mark.line) + 1
        elif isinstance(part, str) and isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                return line
            line, node = int(pair[0].start_mark.line) + 1, pair[1]
        else:
            return line
    return line


def _path_parts(dotted: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in dotted.split("."):
        name, _, rest = piece.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest.lstrip("[")
    return parts
