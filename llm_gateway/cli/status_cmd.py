"""``llm-gateway status`` and ``llm-gateway health``: ask the running gateway.

Both call the server's ``GET /health`` at ``--url``, or at the address the
config file names (the loopback side of ``0.0.0.0``). ``status`` reports what
the gateway itself says it serves (its config file, version, start time, the
counts, a configuration it could not load, settings waiting for a restart),
warns when that is not the file this command reads, lists the accounts of
this command's file with the gateway's view of each, and exits 1 when no
gateway answers (with ``--url``, also when this command cannot read its file). ``health`` exits 0 only when the gateway answers and says it
is healthy, so it can serve as a container health check; it works without a
readable config file.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config.schema import Config, ServerConfig, UpstreamAccount
from ..errors import ConfigError
from .context import Context, print_table
from .running import check_url, fetch_health, local_url, serves_file, show_address

__all__ = ["probe", "register", "summary"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser("status", help="what the running gateway serves; exit 1 if down")
    add_status_options(status)
    status.set_defaults(handler=cmd_status)

    health = commands.add_parser("health", help="exit 0 only if the running gateway is healthy")
    health.add_argument("--json", action="store_true", help="machine-readable output")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (default 3)")
    add_url_option(health)
    health.set_defaults(handler=cmd_health)


def add_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the gateway's URL (default: the address in the config file)")


def add_status_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_url_option(parser)


def probe(config: Config, timeout: float = 3.0) -> dict[str, Any] | None:
    """The running gateway's ``/health`` JSON, or None when nothing answers."""
    return fetch_health(local_url(config.server), timeout)


def summary(
    config: Config,
    health: dict[str, Any] | None,
    url: str | None = None,
    program: str = "llm-gateway",
) -> dict[str, Any]:
    address = show_address(url) if url else f"{config.server.host}:{config.server.port}"
    return {
        "server": {
            "address": address,
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
                "state": _account_state(a, health, program),
            }
            for a in config.upstream_accounts
        ],
    }


def _account_state(account: UpstreamAccount, health: dict[str, Any] | None, program: str) -> str:
    account_id = account.id
    if not account.enabled:
        return "disabled"
    if account.type == "oauth":
        if account.oauth.needs_reauth:
            return f"needs re-authorisation ({program} oauth start {account_id})"
        if not account.oauth.access_token:
            return f"not authorised ({program} oauth start {account_id})"
    if health is None:
        return "unknown (gateway not running)"
    accounts = health.get("accounts") or {}
    entry = accounts.get(account_id) if isinstance(accounts, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("state"), str):
        return str(entry["state"])
    return "enabled"


def _target(args: argparse.Namespace, config: Config | None) -> str:
    if args.url:
        return check_url(args.url)
    return local_url(config.server if config is not None else ServerConfig())


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    if args.url:
        config, problem = _read_config(ctx)
    else:  # the gateway's address is in the file
        config, problem = ctx.store.load(create=False), None
    url = _target(args, config)
    health = fetch_health(url, 3.0)
    info = summary(config or Config(), health, url if args.url else None, ctx.program)
    same = serves_file(health, ctx.store.path) if health is not None else None
    info["config"] = {"path": str(ctx.store.path), "error": problem, "served": same}
    if config is None:  # nothing to list from a file this command cannot read
        info["gateway_keys"] = info["upstreams"] = None
    if args.json:
        ctx.json(info)
        return 0 if health is not None else 1
    server = info["server"]
    state = "running" if health is not None else "not running"
    ctx.out(f"Gateway at {server['address']}: {state}")
    if health is not None:
        _describe_gateway(ctx, health)
        if same is False:
            ctx.err(
                f"warning: the gateway serves {health.get('config_path')}, "
                f"but this command reads {ctx.store.path}"
            )
    ctx.out(f"Config: {ctx.store.path}" + (f" (cannot read: {problem})" if problem else ""))
    if config is None:
        return 0 if health is not None else 1
    keys = info["gateway_keys"]
    ctx.out(f"Gateway keys: {keys['enabled']} enabled of {keys['total']}")
    ups = info["upstreams"]
    ctx.out(f"Upstream accounts: {len(ups)}")
    if ups:
        rows = [[u["id"], u["name"], u["provider"], u["type"], u["state"]] for u in ups]
        print_table(ctx, ["id", "name", "provider", "type", "state"], rows)
    return 0 if health is not None else 1


def _describe_gateway(ctx: Context, health: dict[str, Any]) -> None:
    """What the gateway says about itself (fields an older gateway lacks are skipped)."""
    facts = [f"version {health.get('version')}"]
    if health.get("started_at"):
        facts.append(f"started {health['started_at']}")
    if isinstance(health.get("pid"), int):
        facts.append(f"pid {health['pid']}")
    ctx.out(f"  {', '.join(facts)}")
    if health.get("config_path"):
        ctx.out(f"  serves: {health['config_path']}")
    loaded = health.get("config")
    if isinstance(loaded, str) and loaded != "ok":
        ctx.out(f"  configuration: {loaded} (the last good configuration stays in force)")
    keys, ups = health.get("gateway_keys"), health.get("upstreams")
    if isinstance(keys, dict):
        ctx.out(f"  gateway keys in use: {keys.get('enabled')} enabled of {keys.get('total')}")
    if isinstance(ups, dict):
        ctx.out(
            f"  upstream accounts in use: {ups.get('enabled')} enabled of {ups.get('total')}"
            f", {ups.get('available')} available"
        )
    shared = health.get("state")
    if isinstance(shared, dict):
        ctx.out(f"  shared state: {_shared_state(shared)}")
    pending = health.get("restart_needed")
    if isinstance(pending, list) and pending:
        ctx.out(f"  restart needed for: {', '.join(str(s) for s in pending)}")


def _shared_state(shared: dict[str, Any]) -> str:
    """``redis at redis://host:6379/0, reachable`` (the address comes masked)."""
    backend = str(shared.get("backend"))
    if "reachable" not in shared:
        return backend
    where = f"{backend} at {shared.get('address')}"
    if shared.get("reachable"):
        return f"{where}, reachable"
    return (
        f"{where}, UNREACHABLE since {shared.get('unreachable_since')} ({shared.get('error')}); "
        f"{shared.get('degraded')}"
    )


def _read_config(ctx: Context) -> tuple[Config | None, str | None]:
    """This command's config file, or why it cannot be read (never created here)."""
    try:
        return ctx.store.load(create=False), None
    except ConfigError as exc:
        return None, str(exc)


def cmd_health(args: argparse.Namespace, ctx: Context) -> int:
    config: Config | None = None
    if not args.url:
        config, problem = _read_config(ctx)
        if problem:
            ctx.err(f"note: {problem}; asking the default address")
    url = _target(args, config)
    health = fetch_health(url, args.timeout)
    healthy = health is not None and health.get("status") == "ok"
    if args.json:
        ctx.json({"healthy": healthy, "health": health})
    elif health is None:
        ctx.out(f"unhealthy: no gateway answers on {show_address(url)}")
    else:
        ctx.out(f"{'healthy' if healthy else 'unhealthy'}: status {health.get('status')}")
        loaded = health.get("config")
        if isinstance(loaded, str) and loaded != "ok":
            ctx.err(f"warning: configuration {loaded}; the last good one stays in force")
    return 0 if healthy else 1
