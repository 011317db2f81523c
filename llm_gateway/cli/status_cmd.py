"""``llm-gateway status`` and ``llm-gateway health``: ask the running gateway.

Both read the configured address from the config file and call the server's
``GET /health`` on the loopback side of it (``0.0.0.0`` means ``127.0.0.1``).
``health`` exits 0 only when the gateway answers and says it is healthy, so it
can serve as a container health check.
"""

from __future__ import annotations

import argparse
import http.client
import json
from typing import Any

from ..config.schema import Config, UpstreamAccount
from .context import Context, print_table

__all__ = ["probe", "register", "summary"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser("status", help="is the gateway up; keys and upstreams")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)

    health = commands.add_parser("health", help="exit 0 only if the running gateway is healthy")
    health.add_argument("--json", action="store_true", help="machine-readable output")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (default 3)")
    health.set_defaults(handler=cmd_health)


def local_address(config: Config) -> tuple[str, int]:
    host = config.server.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, config.server.port


def probe(config: Config, timeout: float = 3.0) -> dict[str, Any] | None:
    """The running gateway's ``/health`` JSON, or None when nothing answers."""
    host, port = local_address(config)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        body = response.read()
        data = json.loads(body)
        return data if isinstance(data, dict) else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def summary(config: Config, health: dict[str, Any] | None) -> dict[str, Any]:
    host, port = config.server.host, config.server.port
    return {
        "server": {
            "address": f"{host}:{port}",
            "reachable": health is not None,
            "health": health,
        },
        "gateway_keys": {
            "total": len(config.gateway_keys),
            "enabled": sum(1 for k in config.gateway_keys if k.enabled),
        },
        "upstreams": [
            {
                "id": a.id,
                "name": a.name,
                "provider": a.provider,
                "type": a.type,
                "enabled": a.enabled,
                "state": _account_state(a, health),
            }
            for a in config.upstream_accounts
        ],
    }


def _account_state(account: UpstreamAccount, health: dict[str, Any] | None) -> str:
    account_id = account.id
    if not account.enabled:
        return "disabled"
    if account.type == "oauth":
        if account.oauth.needs_reauth:
            return "needs re-authorisation (llm-gateway oauth start " + account_id + ")"
        if not account.oauth.access_token:
            return "not authorised (llm-gateway oauth start " + account_id + ")"
    if health is None:
        return "unknown (gateway not running)"
    accounts = health.get("accounts") or {}
    entry = accounts.get(account_id) if isinstance(accounts, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("state"), str):
        return str(entry["state"])
    return "enabled"


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    config = ctx.store.load()
    info = summary(config, probe(config))
    if args.json:
        ctx.json(info)
        return 0
    server = info["server"]
    state = "running" if server["reachable"] else "not running"
    ctx.out(f"Gateway at {server['address']}: {state}")
    ctx.out(f"Config: {ctx.store.path}")
    keys = info["gateway_keys"]
    ctx.out(f"Gateway keys: {keys['enabled']} enabled of {keys['total']}")
    ups = info["upstreams"]
    ctx.out(f"Upstream accounts: {len(ups)}")
    if ups:
        rows = [[u["id"], u["name"], u["provider"], u["type"], u["state"]] for u in ups]
        print_table(ctx, ["id", "name", "provider", "type", "state"], rows)
    return 0


def cmd_health(args: argparse.Namespace, ctx: Context) -> int:
    config = ctx.store.load()
    health = probe(config, args.timeout)
    healthy = health is not None and health.get("status") == "ok"
    if args.json:
        ctx.json({"healthy": healthy, "health": health})
    elif health is None:
        host, port = local_address(config)
        ctx.out(f"unhealthy: no gateway answers on {host}:{port}")
    else:
        ctx.out(f"{'healthy' if healthy else 'unhealthy'}: status {health.get('status')}")
    return 0 if healthy else 1
