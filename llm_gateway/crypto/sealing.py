"""Sealing upstream secrets at rest, and the secret key that seals them.

Theory of operation: an upstream API key stored in the gateway's files is kept
as a *sealed token*, ``"enc:v1:" + base64url(nonce | ciphertext | tag)``
without ``=`` padding, where the ciphertext is ChaCha20-Poly1305 (RFC 8439)
under the gateway's 32-byte secret key with a fresh random 12-byte nonce.
The caller's ``context`` string (for example ``"account:work/api_key"``) is
bound in as associated data, so a token copied to another account or field
does not decrypt. ``unseal`` accepts only the canonical base64 spelling
(so a token has exactly one valid form) and turns every failure into
``SecretKeyError`` with a message that names the context, never the secret.

The secret key comes from, in order:

1. the ``LLM_GATEWAY_SECRET_KEY`` environment variable, if set (even if set
   to something invalid: a bad value is an error, never silently ignored);
2. the file ``<home>/secret.key``;
3. with ``create=True``, a new random key written to that file.

Both the variable and the file hold the key as text: 64 hex digits, or the
URL-safe base64 of exactly 32 bytes (43 characters, optionally with one
``=``). Surrounding whitespace, such as a trailing newline, is ignored. New
files hold 64 lowercase hex digits and a newline.

File creation is atomic against other gateway processes: ``O_CREAT|O_EXCL``
with mode 0600, write, fsync. A process that loses the race reads the
winner's file. An empty key file is re-read for up to two seconds (its
creator may be between create and write) before it is reported as
malformed. ``home`` is created with mode 0700 if it does not exist; an
existing ``home`` keeps its mode.

Permissions: a key file readable or writable by group or others is still
accepted (refusing it would lock people out of their own data), but a
warning naming the file and its mode is logged each time it is loaded.

``mask`` is unrelated to sealing but belongs with it: it renders a secret
for listings, keeping at most a vendor prefix and the last four characters.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from llm_gateway.crypto.chacha20poly1305 import (
    KEY_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    InvalidTag,
    decrypt,
    encrypt,
)
from llm_gateway.errors import SecretKeyError

__all__ = [
    "KEY_FILE_NAME",
    "SEALED_PREFIX",
    "SECRET_KEY_ENV",
    "is_sealed",
    "load_secret_key",
    "mask",
    "seal",
    "unseal",
]

SECRET_KEY_ENV = "LLM_GATEWAY_SECRET_KEY"
KEY_FILE_NAME = "secret.key"
SEALED_PREFIX = "enc:v1:"

_SEALED_NAMESPACE = "enc:"
# Domain separation: the associated data is this label, a NUL, then the context.
_AAD_LABEL = b"llm-gateway enc:v1\x00"
_HEX_KEY = re.compile(r"[0-9A-Fa-f]{64}")
_B64_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
# How long an empty key file (another process is still writing it) is re-read.
_EMPTY_FILE_WAIT_SECONDS = 2.0
_EMPTY_FILE_POLL_SECONDS = 0.02
_MASK_MIN_LENGTH = 12
_MASK_TAIL = 4
_MASK_MIN_HIDDEN = 8
_VENDOR_PREFIX = re.compile(r"(?:[a-z]{2,5}[-_]){1,2}")

_log = logging.getLogger(__name__)


def _b64decode_canonical(text: str) -> bytes | None:
    """Decode URL-safe base64 (padding optional), or None unless ``text`` is canonical.

    Canonical means the alphabet is URL-safe, any padding is exactly right,
    and the spare low bits of the last character are zero, so that every
    byte string has exactly one accepted spelling.
    """
    body = text.rstrip("=")
    if not _B64_ALPHABET.fullmatch(body):
        return None
    padding = len(text) - len(body)
    if padding and (len(body) + padding) % 4:
        return None
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != body:
        return None
    return raw


def _decode_key_text(text: str) -> bytes | None:
    """The 32-byte key encoded in ``text``, or None when it is not a valid encoding."""
    text = text.strip()
    if _HEX_KEY.fullmatch(text):
        return bytes.fromhex(text)
    raw = _b64decode_canonical(text)
    return raw if raw is not None and len(raw) == KEY_SIZE else None


def _read_key_file(path: Path) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
            mode = os.fstat(f.fileno()).st_mode
    except UnicodeDecodeError:
        raise SecretKeyError(f"secret key file {path} is not valid UTF-8 text") from None
    except OSError as exc:
        raise SecretKeyError(f"cannot read secret key file {path}: {exc.strerror}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning(
            "secret key file %s has mode %03o: it is accessible to other users; run 'chmod 600 %s'",
            path,
            stat.S_IMODE(mode),
            path,
        )
    return text


def _parse_key_file(path: Path, text: str) -> bytes:
    key = _decode_key_text(text)
    if key is None:
        raise SecretKeyError(
            f"secret key file {path} is malformed: it must hold 64 hex digits or the "
            "URL-safe base64 of 32 bytes"
        )
    return key


def _create_key_file(home: Path, path: Path) -> bytes | None:
    """Write a new random key to ``path``; None if another process created it first."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SecretKeyError(f"cannot create directory {home}: {exc.strerror}") from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return None
    except OSError as exc:
        raise SecretKeyError(f"cannot create secret key file {path}: {exc.strerror}") from None
    key = secrets.token_bytes(KEY_SIZE)
    try:
        try:
            os.write(fd, (key.hex() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        # Leave no half-written key behind: the next start would refuse it.
        path.unlink(missing_ok=True)
        raise SecretKeyError(f"cannot write secret key file {path}: {exc.strerror}") from None
    return key


def _load_key_file(path: Path) -> bytes:
    """Read and decode an existing key file.

    An empty file is another process between its ``O_EXCL`` create and its
    write, so it is re-read for a short while before being called malformed.
    """
    deadline = time.monotonic() + _EMPTY_FILE_WAIT_SECONDS
    while True:
        text = _read_key_file(path)
        if text.strip() or time.monotonic() >= deadline:
            return _parse_key_file(path, text)
        time.sleep(_EMPTY_FILE_POLL_SECONDS)


def load_secret_key(home: Path, environ: Mapping[str, str], *, create: bool) -> bytes:
    """The gateway's 32-byte secret key: from the environment, the key file, or new.

    Raises ``SecretKeyError`` when the variable is set but malformed, when the
    file is malformed or unreadable, or when there is no key and ``create`` is
    false. Messages name the variable or the file, never the key.
    """
    if SECRET_KEY_ENV in environ:
        key = _decode_key_text(environ[SECRET_KEY_ENV])
        if key is None:
            raise SecretKeyError(
                f"{SECRET_KEY_ENV} is set but is not a valid key: it must be 64 hex digits "
                "or the URL-safe base64 of 32 bytes"
            )
        return key
    path = home / KEY_FILE_NAME
    if path.exists():
        return _load_key_file(path)
    if not create:
        raise SecretKeyError(
            f"no secret key: {path} does not exist and {SECRET_KEY_ENV} is not set"
        )
    created = _create_key_file(home, path)
    if created is not None:
        return created
    return _load_key_file(path)


def _aad(context: str) -> bytes:
    return _AAD_LABEL + context.encode("utf-8", "surrogatepass")


def seal(key: bytes, plaintext: str, *, context: str) -> str:
    """Encrypt ``plaintext`` for storage; only ``unseal`` with the same key and context opens it."""
    nonce = secrets.token_bytes(NONCE_SIZE)
    sealed = encrypt(key, nonce, plaintext.encode("utf-8"), _aad(context))
    return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")


def unseal(key: bytes, token: str, *, context: str) -> str:
    """The plaintext of a token made by ``seal``; ``SecretKeyError`` on any failure."""
    if not token.startswith(SEALED_PREFIX):
        if token.startswith(_SEALED_NAMESPACE):
            raise SecretKeyError(
                f"sealed value for {context!r} uses an unsupported format "
                f"(this version reads only {SEALED_PREFIX!r} values)"
            )
        raise SecretKeyError(
            f"value for {context!r} is not a sealed secret (expected the {SEALED_PREFIX!r} prefix)"
        )
    failure = SecretKeyError(
        f"sealed value for {context!r} cannot be decrypted: wrong secret key or corrupted value"
    )
    raw = _b64decode_canonical(token[len(SEALED_PREFIX) :])
    if raw is None or len(raw) < NONCE_SIZE + TAG_SIZE:
        raise failure
    try:
        plaintext = decrypt(key, raw[:NONCE_SIZE], raw[NONCE_SIZE:], _aad(context))
        return plaintext.decode("utf-8")
    except (InvalidTag, UnicodeDecodeError):
        raise failure from None


def is_sealed(value: str) -> bool:
    """True for any value in the sealed namespace (``enc:...``).

    Deliberately broader than the current ``enc:v1:`` format: a value of a
    future or damaged format must go to ``unseal`` (which explains the
    problem) instead of being mistaken for a plaintext secret.
    """
    return value.startswith(_SEALED_NAMESPACE)


def mask(secret: str) -> str:
    """A listing-safe rendering of ``secret``: ``sk-ant-…wxyz``, ``…wxyz`` or ``…``.

    Shows at most a vendor prefix (one or two groups of 2-5 lowercase letters,
    each ending in ``-`` or ``_``) and the last four characters, and only while
    at least eight characters stay hidden: the tail is dropped first, then the
    prefix. Secrets shorter than 12 characters show nothing at all.
    """
    if len(secret) < _MASK_MIN_LENGTH:
        return "…"
    match = _VENDOR_PREFIX.match(secret)
    prefix = match.group(0) if match else ""
    rest = secret[len(prefix) :]
    if len(rest) < _MASK_MIN_HIDDEN:
        prefix, rest = "", secret
    tail = rest[-_MASK_TAIL:] if len(rest) - _MASK_TAIL >= _MASK_MIN_HIDDEN else ""
    return prefix + "…" + tail
