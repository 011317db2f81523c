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
  A crash between the temporary file's creation and its rename can leave a
  ``.config.*.tmp`` behind (it holds sealed secrets): every write, and
  ``remove_stale_temporaries()`` at server start, deletes such files under the
  lock, when no writer can be using them.
* Watching: ``signature()`` is a cheap ``stat`` tuple; the server polls it and
  reloads when it changes (see ``server/reloading.py``). A running server reads
  with ``load_current()``, which refuses a missing or empty file instead of
  standing in the defaults for it, and reports the signature taken *before*
  reading and a digest of the bytes it parsed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..errors import ConfigError
from .fields import SchemaError
from .schema import Config, default_document, parse_config

__all__ = ["ConfigStore", "resolve_config_path"]

HOME_ENV = "LLM_GATEWAY_HOME"
CONFIG_NAME = "config.yaml"
LOCK_NAME = ".config.lock"
TEMP_PREFIX, TEMP_SUFFIX = ".config.", ".tmp"

T = TypeVar("T")


def resolve_config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """``--config PATH`` wins, then ``$LLM_GATEWAY_HOME/config.yaml``, then ``~/.llm-gateway``."""
    if explicit:
        return Path(explicit).expanduser()
    home = environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / CONFIG_NAME
    return Path.home() / ".llm-gateway" / CONFIG_NAME


Signature = tuple[int, int, int]


def content_digest(raw: bytes) -> str:
    """A short digest of the file's bytes: which version a server has loaded."""
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Loaded:
    config: Config
    document: dict[str, Any]
    #: ``stat`` of the file as it was opened, before its bytes were read
    signature: Signature | None
    #: ``content_digest`` of the bytes parsed ("" for defaults with no file)
    digest: str = ""


class ConfigStore:
    """The configuration file at ``path`` and its siblings (lock, secret key)."""

    def __init__(self, path: Path):
        self.path = path
        self.home = path.parent
        #: how many times this object wrote the file (the CLI waits for a gateway then)
        self.writes = 0

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

    def signature(self) -> Signature | None:
        """A value that changes whenever the file is replaced or edited."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror}") from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def load_with_signature(self) -> tuple[Config, Signature | None]:
        loaded = self._read()
        return loaded.config, loaded.signature

    def load_current(self, *, strict: bool = True) -> Loaded:
        """The file as it is now, with its signature and digest. ``strict`` (for a
        running server): a missing or empty file is a ``ConfigError``, never the
        defaults."""
        return self._read(strict=strict)

    def current_digest(self) -> str | None:
        """``content_digest`` of the file's bytes now; None when it cannot be read."""
        try:
            return content_digest(self.path.read_bytes())
        except OSError:
            return None

    def _read(self, *, strict: bool = False) -> Loaded:
        try:
            with open(self.path, "rb") as handle:
                signature_before = os.fstat(handle.fileno())
                raw = handle.read()
        except FileNotFoundError:
            if strict:
                raise ConfigError(f"{self.path}: file is missing") from None
            return Loaded(parse_config(default_document()), default_document(), None)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror}") from None
        document = self._parse_yaml(raw, strict=strict)
        try:
            config = parse_config(document)
        except SchemaError as exc:
            raise ConfigError(self._locate(raw, exc)) from None
        signature = (
            signature_before.st_ino,
            signature_before.st_mtime_ns,
            signature_before.st_size,
        )
        return Loaded(config, document, signature, content_digest(raw))

    def _parse_yaml(self, raw: bytes, *, strict: bool = False) -> dict[str, Any]:
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
            if strict:
                raise ConfigError(f"{self.path}: file is empty")
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
            self._remove_temporaries()
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
            self.writes += 1
            return result

    def remove_stale_temporaries(self) -> None:
        """Delete temporary files a crashed writer left behind (under the lock).

        A home where no lock can be taken (a read-only mount) has none to remove
        and is no reason to fail."""
        if not self.home.is_dir():
            return
        try:
            with self.locked():
                self._remove_temporaries()
        except ConfigError:
            return

    def _remove_temporaries(self) -> None:
        """Only call with the lock held: then no writer is using any of them."""
        for leftover in self.home.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
            # best effort: one that cannot be removed must not block the write
            with contextlib.suppress(OSError):
                leftover.unlink()

    def ensure_home(self) -> None:
        if not self.home.exists():
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _write(self, document: dict[str, Any]) -> None:
        text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=self.home)
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
