"""``--base-url`` checks: refuse what cannot work, hint at what probably will not.

Theory of operation: a base URL must be ``http://`` or ``https://`` with a
host, a valid port, no credentials (they would show in every listing: keys go
in ``--key``, extra headers in ``--header``), and no query or fragment (the
gateway appends paths to it). Past that, whether the URL carries the API
version is the provider's to say (``Provider.base_url_version`` and
``Provider.path_version``): a mismatch is a hint, not an error, because
compatible servers differ.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..providers.base import Provider
from .context import CliError

__all__ = ["base_url_hints", "check_base_url"]


def check_base_url(url: str) -> None:
    """Raise ``CliError`` saying what is wrong with a malformed base URL."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise CliError(f"--base-url {url!r} must start with http:// or https:// and name a host")
    if "@" in parts.netloc:
        raise CliError(
            "--base-url must not carry credentials: give the key with --key, "
            "other headers with --header"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or any(c.isspace() for c in url.strip()):
        raise CliError(f"--base-url {url!r} has no valid host and port")
    if parts.query or url.rstrip().endswith("?"):
        raise CliError(f"--base-url {url!r} must not have a query (?...): paths are appended to it")
    if parts.fragment or "#" in url:
        raise CliError(f"--base-url {url!r} must not have a fragment (#...)")


def base_url_hints(url: str, provider: Provider) -> list[str]:
    """What the provider expects of the URL's version segment, when this one differs."""
    path = urlsplit(url.strip()).path.rstrip("/")
    hints = []
    expected = provider.base_url_version
    if expected and not path.endswith(expected):
        hints.append(
            f"{provider.name} base URLs usually end in {expected} (as in "
            f"http://127.0.0.1:8000{expected}): the gateway appends only the endpoint's "
            "path; keep this URL if the server's documentation says so"
        )
    added = provider.path_version
    if added and path.endswith(added):
        hints.append(
            f"{provider.name} base URLs do not include {added}: the gateway adds it itself "
            f"(requests would go to ...{added}{added}/...); remove the trailing {added}"
        )
    return hints
