"""The admin page: one self-contained HTML file shipped as package data.

``page.html`` beside this module holds the whole page, its CSS in one
``<style>`` and its script in one ``<script>``; it loads nothing from anywhere
else (it must work on a host with no internet access). It is read with
``importlib.resources`` (so it is found inside the zipapp too), once, on the
first request. The response carries a Content-Security-Policy that allows
exactly that one script and that one style (by their SHA-256) and requests to
this gateway only, so the page cannot be made to load or send anything
elsewhere.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.resources
import re

from ..server.messages import Response

__all__ = ["content_security_policy", "page_html", "response"]

PAGE_RESOURCE = "page.html"

_BLOCK = {
    "script": re.compile(r"<script>(.*?)</script>", re.DOTALL),
    "style": re.compile(r"<style>(.*?)</style>", re.DOTALL),
}


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy(html: str) -> str:
    """A policy allowing the page's own inline script and style blocks and nothing else."""
    scripts = " ".join(_digest(m) for m in _BLOCK["script"].findall(html))
    styles = " ".join(_digest(m) for m in _BLOCK["style"].findall(html))
    return (
        "default-src 'none'; "
        f"script-src {scripts}; "
        f"style-src {styles}; "
        "img-src data:; "
        "connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


@functools.lru_cache(maxsize=1)
def page_html() -> bytes:
    """The page's bytes, read from the package (a zipapp included)."""
    return importlib.resources.files(__package__).joinpath(PAGE_RESOURCE).read_bytes()


@functools.lru_cache(maxsize=1)
def _headers() -> tuple[tuple[str, str], ...]:
    return (
        ("content-type", "text/html; charset=utf-8"),
        ("content-security-policy", content_security_policy(page_html().decode())),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    )


def response() -> Response:
    return Response(200, list(_headers()), page_html())
