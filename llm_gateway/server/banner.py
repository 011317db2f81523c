"""The one line ``server start`` prints: where the gateway listens, which file
configures it, what it has to serve with, and, when it lacks keys or upstream
accounts, the command to run next (as the user runs the CLI: ``llm-gateway``,
``python3 llm-gateway.pyz``...). Pure: the caller prints it."""

from __future__ import annotations

from ..config.schema import Config

__all__ = ["NEXT_KEY", "NEXT_UPSTREAM", "start_line"]

#: the next steps, after the command that runs the CLI
NEXT_UPSTREAM = "upstream add --type api-key --provider anthropic --name main --key -"
NEXT_KEY = "apikey add --name NAME"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def start_line(address: str, config_path: str, config: Config, program: str = "llm-gateway") -> str:
    keys, upstreams = len(config.gateway_keys), len(config.upstream_accounts)
    line = (
        f"llm-gateway listening on {address} (config: {config_path}; "
        f"{_count(keys, 'gateway key')}, {_count(upstreams, 'upstream account')})"
    )
    missing = []
    if upstreams == 0:
        missing.append(f"{program} {NEXT_UPSTREAM}")
    if keys == 0:
        missing.append(f"{program} {NEXT_KEY}")
    if missing:
        line += "; next: " + ", then ".join(missing)
    return line
