"""TLS contexts for one pool.

Theory of operation: building an ``ssl.SSLContext`` loads every CA root, so a
pool builds at most two, lazily, on its first https request: the verifying
one (certifi's roots, loaded from memory with ``cadata=certifi.contents()`` so
it works from inside a zipapp; or the caller's own context) and, only if some
request asks for ``verify_tls=False``, a non-verifying one. Each origin that
is reached without verification is logged once, as a warning, through
``logging.getLogger("llm_gateway.upstream")``.
"""

from __future__ import annotations

import logging
import ssl

import certifi

__all__ = ["TLSContexts"]

_log = logging.getLogger("llm_gateway.upstream")


class TLSContexts:
    """The verifying and non-verifying contexts of a pool, built on first use."""

    def __init__(self, custom: ssl.SSLContext | None = None) -> None:
        self._verifying = custom
        self._insecure: ssl.SSLContext | None = None
        self._warned: set[str] = set()

    def for_origin(self, origin: str, *, verify: bool) -> ssl.SSLContext:
        """The context for ``origin`` (used only in the one-time warning)."""
        if verify:
            if self._verifying is None:
                self._verifying = _verifying_context()
            return self._verifying
        if origin not in self._warned:
            self._warned.add(origin)
            _log.warning("TLS certificate verification is disabled for %s", origin)
        if self._insecure is None:
            self._insecure = _insecure_context()
        return self._insecure


def _verifying_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=certifi.contents())
    context.set_alpn_protocols(["http/1.1"])
    return context


def _insecure_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context
