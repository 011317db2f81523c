"""The one line ``server start`` prints: where the gateway listens, which file
configures it, what it has to serve with, and, when it lacks keys or upstream
accounts, the command to run next. Pure: the caller prints it."""

from __future__ import annotations

from ..config.schema import Config

__all__ = ["NEXT_KEY", "NEXT_UPSTREAM", "start_line"]

NEXT_UPSTREAM = "llm-gateway upstream add --type api-key --provider anthropic --name main --key -"
NEXT_KEY = "llm-gateway apikey add --name NAME"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def start_line(address: str, config_path: str, config: Config) -> str:
    keys, upstreams = len(config.gateway_keys), len(config.upstream_accounts)
    line = (
        f"llm-gateway listening on {address} (config: {config_path}; "
        f"{_count(keys, 'gateway key')}, {_count(upstreams, 'upstream account')})"
    )
    missing = []
    if upstreams == 0:
        missing.append(NEXT_UPSTREAM)
    if keys == 0:
        missing.append(NEXT_KEY)
    if missing:
        line += "; next: " + ", then ".join(missing)
    return line
