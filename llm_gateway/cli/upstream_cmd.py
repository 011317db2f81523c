"""``llm-gateway upstream ...``: the upstream accounts requests are sent to.

API keys are sealed (ChaCha20-Poly1305) before they reach the file, bound to
the account id; listings show a masked tail only. An account's own outbound
proxy (``--proxy``) is shown without its credentials.
"""

from __future__ import annotations

import argparse
import copy
import functools
import secrets
from datetime import datetime, timezone
from typing import Any

from ..config.accounts import ACCOUNT_TYPES, AZURE_URL_STYLES, WIRES
from ..crypto.sealing import load_secret_key, mask, seal, unseal
from ..errors import SecretKeyError
from ..pipeline.credentials import api_key_context
from ..providers.registry import PROVIDERS, get_provider
from ..upstream.proxy import parse_proxy_url, redact_proxy_url
from .apikey_cmd import now_iso
from .base_url import base_url_hints, check_base_url
from .context import CliError, Context, add_actions, parse_csv, print_table
from .entries import Entries
from .sealed import check_secret_key
from .status_cmd import probe

__all__ = ["register"]

ENTRIES = Entries("upstream_accounts", "upstream account", "upstream")
#: the providers an account can be added for: reserved names stay out until served
SERVED = tuple(name for name, provider in PROVIDERS.items() if not provider.reserved)


def _model_map(text: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in parse_csv(text):
        client, sep, upstream = item.partition("=")
        if not sep or not client.strip() or not upstream.strip():
            raise argparse.ArgumentTypeError(
                "model map entries look like client-model=upstream-model"
            )
        mapping[client.strip()] = upstream.strip()
    return mapping


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError("headers look like Name=value")
    return name.strip().lower(), value.strip()


def _proxy(text: str) -> str:
    """``--proxy``: an http:// proxy URL, or "" to remove the account's own proxy."""
    if not text.strip():
        return ""
    try:
        parse_proxy_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not text.strip().startswith("http://"):
        raise argparse.ArgumentTypeError("the proxy URL must start with http://")
    return text.strip()


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("upstream", help="manage upstream provider accounts")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def settings(p: argparse.ArgumentParser, *, adding: bool) -> None:
        p.add_argument("--type", choices=ACCOUNT_TYPES, required=adding, help="account type")
        p.add_argument("--provider", choices=SERVED, required=adding, help="provider family")
        p.add_argument("--name", required=adding, help="a label for the account")
        p.add_argument("--key", help="the provider API key, or - to read it from standard input")
        p.add_argument("--base-url", help="API base URL (required for openai-compatible)")
        p.add_argument(
            "--models",
            help="comma-separated glob patterns of models served (required for providers "
            "without default models, such as openai-compatible)",
        )
        p.add_argument(
            "--model-map",
            type=_model_map,
            help="client=upstream,... model renames; client may be a glob (claude-*=qwen2.5)",
        )
        p.add_argument(
            "--max-output-tokens",
            type=int,
            help="cap the output tokens a request asks this account for (0: no cap)",
        )
        p.add_argument(
            "--wire",
            choices=(*WIRES, "default"),
            help="the API chat requests use: chat (/chat/completions) or responses "
            "(/responses, for Responses-only models); default: the provider's choice",
        )
        p.add_argument(
            "--responses-models",
            help="comma-separated glob patterns of upstream models always sent to "
            "/responses ('' clears)",
        )
        p.add_argument("--priority", type=int, help="lower numbers are tried first (default 0)")
        p.add_argument("--weight", type=int, help="share of traffic within a priority (default 1)")
        p.add_argument(
            "--verify-tls",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="verify the upstream's TLS certificate (default: yes)",
        )
        p.add_argument(
            "--developer-role",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="the upstream accepts role 'developer' (openai-compatible quirk)",
        )
        p.add_argument(
            "--max-completion-tokens",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="the upstream accepts max_completion_tokens (openai-compatible quirk)",
        )
        p.add_argument(
            "--header",
            type=_header,
            action="append",
            help="extra header sent upstream, Name=value (repeatable)",
        )
        p.add_argument(
            "--proxy",
            type=_proxy,
            metavar="URL",
            help="this account's own outbound proxy, http://[user:pass@]host:port, for its "
            "API calls, OAuth login and token refreshes ('' removes it)",
        )
        p.add_argument(
            "--azure-style",
            choices=AZURE_URL_STYLES,
            help="azure: URLs per deployment (/openai/deployments/NAME/..., the default) "
            "or the v1 API (/openai/v1/..., the deployment in the body)",
        )
        p.add_argument(
            "--api-version",
            help="azure: the api-version of deployment URLs (default 2024-10-21)",
        )
        p.add_argument("--json", action="store_true", help="machine-readable output")

    adding = functools.partial(settings, adding=True)
    updating = functools.partial(settings, adding=False)
    add_actions(
        sub,
        (
            ("add", "add an account", cmd_add, False, adding),
            ("list", "list accounts", cmd_list, False, None),
            ("show", "show one account", cmd_show, True, None),
            ("update", "change an account", cmd_update, True, updating),
            ("remove", "delete an account", cmd_remove, True, None),
            ("disable", "stop routing to an account", cmd_disable, True, None),
            ("enable", "route to an account again", cmd_enable, True, None),
        ),
    )


def _read_key(args: argparse.Namespace, ctx: Context) -> str | None:
    if args.key is None:
        return None
    key = ctx.stdin.readline().strip() if args.key == "-" else args.key.strip()
    if not key:
        raise CliError("the API key is empty")
    return key


def _apply_wire(entry: dict[str, Any], args: argparse.Namespace) -> None:
    """``--wire`` and ``--responses-models``, for providers that serve more than one API."""
    if args.wire is None and args.responses_models is None:
        return
    if not get_provider(entry["provider"]).declarable_wires:
        raise CliError(f"provider {entry['provider']} serves one API only: --wire does not apply")
    if args.wire == "default":
        entry.pop("wire", None)
    elif args.wire is not None:
        entry["wire"] = args.wire
    if args.responses_models is not None:
        entry.pop("responses_models", None)
        if parse_csv(args.responses_models):
            entry["responses_models"] = parse_csv(args.responses_models)


def _apply(entry: dict[str, Any], args: argparse.Namespace) -> None:
    if args.base_url is not None:
        check_base_url(args.base_url)
    simple = {"name": args.name, "base_url": args.base_url, "priority": args.priority}
    for field, value in simple.items():
        if value is not None:
            entry[field] = value
    if args.weight is not None:
        if args.weight < 1:
            raise CliError("--weight must be at least 1")
        entry["weight"] = args.weight
    if args.models is not None:
        entry["models"] = parse_csv(args.models)
    if args.model_map is not None:
        entry["model_map"] = args.model_map
    if args.max_output_tokens is not None:
        if args.max_output_tokens < 0:
            raise CliError("--max-output-tokens must be a positive number (0: no cap)")
        entry.pop("max_output_tokens", None)
        if args.max_output_tokens:
            entry["max_output_tokens"] = args.max_output_tokens
    _apply_wire(entry, args)
    if args.verify_tls is not None:
        entry["verify_tls"] = args.verify_tls
    if args.proxy:
        entry["proxy"] = args.proxy
    elif args.proxy is not None:
        entry.pop("proxy", None)
    quirks = entry.setdefault("quirks", {})
    if args.developer_role is not None:
        quirks["developer_role"] = args.developer_role
    if args.max_completion_tokens is not None:
        quirks["max_completion_tokens"] = args.max_completion_tokens
    if args.header:
        quirks["extra_headers"] = dict(args.header)
    if not quirks:
        del entry["quirks"]
    azure = entry.setdefault("azure", {})
    if args.azure_style is not None:
        azure["url_style"] = args.azure_style
    if args.api_version is not None:
        azure["api_version"] = args.api_version.strip()
    if not azure:
        del entry["azure"]


def _validate(entry: dict[str, Any]) -> None:
    provider = get_provider(entry["provider"])
    if provider.requires_base_url and not entry.get("base_url"):
        raise CliError(f"provider {provider.name!r} needs --base-url")
    if entry["type"] == "api-key" and not entry.get("api_key"):
        raise CliError("an api-key account needs --key (use --key - to read it from stdin)")
    if entry["type"] == "oauth" and entry["provider"] != "anthropic":
        raise CliError("oauth accounts are supported for provider 'anthropic' only")
    if entry.get("azure") and entry["provider"] != "azure":
        raise CliError("--azure-style and --api-version apply to provider 'azure' only")


def _check_models(entry: dict[str, Any]) -> None:
    """An account that would serve no model is refused (it would never be used)."""
    if entry.get("models") or entry.get("model_map"):
        return
    provider = get_provider(entry["provider"])
    if not provider.default_models:
        raise CliError(
            f"provider {provider.name!r} has no default models: say which models the "
            "account serves with --models (globs, e.g. --models 'qwen*,llama-3*') "
            "or --model-map client=upstream"
        )
    raise CliError(
        "the account would serve no model: give --models (default for provider "
        f"{provider.name!r}: {','.join(provider.default_models)})"
    )


def _hint_base_url(entry: dict[str, Any], args: argparse.Namespace, ctx: Context) -> None:
    """Say (on stderr) when a newly given base URL differs from what the provider expects."""
    if args.base_url is None and args.provider is None:
        return
    if entry.get("base_url"):
        for hint in base_url_hints(entry["base_url"], get_provider(entry["provider"])):
            ctx.err(f"hint: {hint}")


def cmd_add(args: argparse.Namespace, ctx: Context) -> int:
    provider = get_provider(args.provider)
    key = _read_key(args, ctx)
    if args.type == "oauth" and key is not None:
        raise CliError(
            f"oauth accounts take no --key; authorise with '{ctx.command('oauth start ID')}'"
        )
    account_id = "up-" + secrets.token_hex(4)
    entry: dict[str, Any] = {
        "id": account_id,
        "name": args.name,
        "type": args.type,
        "provider": args.provider,
        "models": list(provider.default_models),
        "priority": 0,
        "weight": 1,
        "enabled": True,
        "created_at": now_iso(),
    }
    _apply(entry, args)
    secret_key = load_secret_key(ctx.store.home, ctx.environ, create=True)
    if key is not None:
        entry["api_key"] = seal(secret_key, key, context=api_key_context(account_id))
    _validate(entry)
    _check_models(entry)

    def mutate(document: dict[str, Any]) -> None:
        ENTRIES.check_name(document, args.name, None)
        if key is not None:
            check_secret_key(document, secret_key)
        document.setdefault("upstream_accounts", []).append(entry)

    ctx.store.update(mutate)
    _hint_base_url(entry, args, ctx)
    view = public_view(entry, ctx)
    if args.json:
        ctx.json(view)
    else:
        ctx.out(f"Added upstream account {account_id} ({args.name}, {args.provider}).")
        if args.type == "oauth":
            ctx.out(f"Authorise it with: {ctx.command(f'oauth start {account_id}')}")
    return 0


def _masked_key(entry: dict[str, Any], ctx: Context) -> str | None:
    sealed = entry.get("api_key")
    if not sealed:
        return None
    try:
        secret_key = load_secret_key(ctx.store.home, ctx.environ, create=False)
        return mask(unseal(secret_key, sealed, context=api_key_context(entry["id"])))
    except SecretKeyError:
        return "(sealed: cannot decrypt with this secret key)"


def public_view(entry: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """An account's settings with its credentials masked."""
    oauth = entry.get("oauth") or {}
    view: dict[str, Any] = {
        "id": entry["id"],
        "name": entry["name"],
        "type": entry["type"],
        "provider": entry["provider"],
        "base_url": entry.get("base_url") or get_provider(entry["provider"]).default_base_url,
        "models": list(entry.get("models") or []),
        "model_map": dict(entry.get("model_map") or {}),
        "max_output_tokens": entry.get("max_output_tokens"),
        "wire": entry.get("wire"),
        "responses_models": list(entry.get("responses_models") or []),
        "priority": entry.get("priority", 0),
        "weight": entry.get("weight", 1),
        "enabled": entry.get("enabled", True),
        "verify_tls": entry.get("verify_tls", True),
        "proxy": redact_proxy_url(entry["proxy"]) if entry.get("proxy") else None,
        "key": _masked_key(entry, ctx),
        "quirks": dict(entry.get("quirks") or {}),
        "created_at": entry.get("created_at", ""),
    }
    if entry.get("azure"):
        view["azure"] = dict(entry["azure"])
    if entry["type"] == "oauth":
        view["oauth"] = {
            "authorized": bool(oauth.get("access_token")),
            "expires_at": oauth.get("expires_at"),
            "needs_reauth": bool(oauth.get("needs_reauth")),
        }
    return view


def _state(view: dict[str, Any], ctx: Context) -> str:
    if not view["enabled"]:
        return "disabled"
    oauth = view.get("oauth")
    if oauth is not None:
        start = ctx.command(f"oauth start {view['id']}")
        if oauth["needs_reauth"]:
            return f"needs re-authorisation: {start}"
        if not oauth["authorized"]:
            return f"needs oauth start: {start}"
    return "enabled"


def _documents(ctx: Context) -> list[dict[str, Any]]:
    return list(ctx.store.read_document().get("upstream_accounts") or [])


def _with_health(ctx: Context, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add each account's live health, as the running gateway reports it (if it runs)."""
    health = probe(ctx.store.load(), timeout=1.0)
    accounts = (health or {}).get("accounts") or {}
    for view in views:
        live = accounts.get(view["id"]) if isinstance(accounts, dict) else None
        view["health"] = live if isinstance(live, dict) else None
    return views


def _health_text(view: dict[str, Any]) -> str:
    live = view.get("health")
    return str(live.get("state", "-")) if live else "n/a"


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    views = _with_health(ctx, [public_view(entry, ctx) for entry in _documents(ctx)])
    if args.json:
        ctx.json(views)
        return 0
    if not views:
        ctx.out("No upstream accounts. Add one with: " + ctx.command("upstream add --help"))
        return 0
    rows = [
        [
            v["id"],
            v["name"],
            v["provider"],
            v["type"],
            _state(v, ctx),
            _health_text(v),
            str(v["priority"]),
            str(v["weight"]),
            _models_text(v),
            v["key"] or "-",
        ]
        for v in views
    ]
    columns = ["id", "name", "provider", "type", "state", "health", "priority", "weight"]
    columns += ["models", "key"]
    print_table(ctx, columns, rows)
    for view in views:
        _warn_unrouted(view, ctx)
        _warn_catch_all(view, views, ctx)
    return 0


def _warn_catch_all(view: dict[str, Any], views: list[dict[str, Any]], ctx: Context) -> None:
    """An account serving every model takes a share of its priority peers' traffic."""
    if not view["enabled"] or "*" not in view["models"]:
        return
    peers = [
        v["id"]
        for v in views
        if v is not view and v["enabled"] and v["priority"] == view["priority"]
    ]
    if peers:
        update = ctx.command(f"upstream update {view['id']} --models GLOBS")
        ctx.err(
            f"warning: upstream account {view['id']} ({view['name']}) serves every model ('*') "
            f"at priority {view['priority']}, so it takes a share of the traffic of "
            f"{', '.join(peers)}; narrow it with: {update}"
        )


def _warn_unrouted(view: dict[str, Any], ctx: Context) -> None:
    if not view["models"] and not view["model_map"]:
        update = ctx.command(f"upstream update {view['id']} --models GLOBS")
        ctx.err(
            f"warning: upstream account {view['id']} ({view['name']}) lists no models, "
            f"so no request is routed to it; set them with: {update}"
        )


def _models_text(view: dict[str, Any]) -> str:
    """The patterns served, then the model map (client=upstream, first match wins)."""
    renames = [f"{client}={upstream}" for client, upstream in view["model_map"].items()]
    return "; ".join(filter(None, [",".join(view["models"]), ",".join(renames)]))


def _print_one(ctx: Context, view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        ctx.json(view)
        return
    view = {**view, "state": _state(view, ctx), "health": _health_text(view)}
    for name, value in view.items():
        if isinstance(value, list):
            value = ",".join(value) or "-"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        ctx.out(f"{name + ':':13}{'-' if value is None else value}")


def cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    entry = ENTRIES.find(ctx.store.read_document(), args.id, ctx)
    view = _with_health(ctx, [public_view(entry, ctx)])[0]
    _print_one(ctx, view, args.json)
    _warn_unrouted(view, ctx)
    return 0


def cmd_update(args: argparse.Namespace, ctx: Context) -> int:
    key = _read_key(args, ctx)
    secret_key = load_secret_key(ctx.store.home, ctx.environ, create=True) if key else None

    def mutate(document: dict[str, Any]) -> dict[str, Any]:
        entry = ENTRIES.find(document, args.id, ctx)
        before = copy.deepcopy(entry)
        if args.type is not None and args.type != entry["type"]:
            raise CliError("an account's type cannot change; remove it and add a new one")
        if args.name is not None:
            ENTRIES.check_name(document, args.name, entry["id"])
        if args.provider is not None:
            entry["provider"] = args.provider
        _apply(entry, args)
        if key is not None and secret_key is not None:
            if entry["type"] == "oauth":
                raise CliError("oauth accounts take no --key")
            check_secret_key(document, secret_key)
            if _stored_key(entry, secret_key) != key:
                entry["api_key"] = seal(secret_key, key, context=api_key_context(entry["id"]))
        _validate(entry)
        if args.models is not None or args.model_map is not None:
            _check_models(entry)
        if entry == before:
            raise CliError(
                f"nothing changed: upstream account {entry['id']} already has these settings"
            )
        return entry

    entry = ctx.store.update(mutate)
    _print_one(ctx, public_view(entry, ctx), args.json)
    _hint_base_url(entry, args, ctx)
    return 0


def _stored_key(entry: dict[str, Any], secret_key: bytes) -> str | None:
    """The account's current API key in plain text (None when it has none)."""
    sealed = entry.get("api_key")
    return unseal(secret_key, sealed, context=api_key_context(entry["id"])) if sealed else None


def cmd_enable(args: argparse.Namespace, ctx: Context) -> int:
    """Enable the account; a running gateway also forgets its credential failure."""

    def mutate(document: dict[str, Any]) -> dict[str, Any]:
        entry = ENTRIES.find(document, args.id, ctx)
        entry["enabled"] = True
        entry["enabled_at"] = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        return dict(entry)

    entry = ctx.store.update(mutate)
    if args.json:
        ctx.json(public_view(entry, ctx))
    else:
        ctx.out(f"Upstream account {args.id} enabled.")
    return 0


def cmd_disable(args: argparse.Namespace, ctx: Context) -> int:
    return ENTRIES.set_enabled(args, ctx, False, lambda entry: public_view(entry, ctx))


def cmd_remove(args: argparse.Namespace, ctx: Context) -> int:
    return ENTRIES.remove(args, ctx)
