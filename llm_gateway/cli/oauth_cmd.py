"""``llm-gateway oauth ...``: authorise OAuth upstream accounts (Claude Code subscriptions).

* ``oauth start ID`` makes a PKCE verifier and a state, saves both sealed in
  the account's ``oauth.pending_*`` fields, prints the authorisation URL (and
  opens a browser when there is a display), then, on a terminal, reads the
  pasted ``code#state``. Because the pending values live in the file, the
  flow can be completed by a later process: ``oauth start ID --code CODE#STATE``.
  Completing checks the state (a mismatch stores nothing), exchanges the code,
  stores the tokens sealed and clears the pending values.
* ``oauth status ID`` shows whether the account is authorised, whose
  subscription it is (the account's e-mail and the organisation, as the token
  answer named them), the expiry and time left, the last refresh and the last
  error.
* ``oauth refresh ID`` refreshes now, through the same ``TokenManager`` the
  server uses (so it coordinates with a running server, and with
  ``state.backend: redis`` with every instance, through Redis).

Only ``--type oauth`` accounts are accepted. Tokens, codes and verifiers are
never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
import webbrowser
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..config.schema import Config, UpstreamAccount
from ..crypto.sealing import load_secret_key
from ..oauth import records
from ..oauth.claude_code import PastedCodeError, parse_pasted_code
from ..oauth.errors import InvalidGrant, OAuthError, ReauthorizationRequired
from ..oauth.flow import PastedCodeFlow, TokenRequest, Tokens
from ..oauth.manager import TokenManager
from ..oauth.pkce import make_state, make_verifier, s256_challenge
from ..oauth.registry import FLOWS
from ..oauth.token_client import post_token
from ..state.backends import token_share
from ..upstream.pool import ConnectionPool
from ..upstream.proxy import ProxySettings
from .context import CliError, Context
from .sealed import check_secret_key

__all__ = ["register", "status_view"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("oauth", help="authorise OAuth upstream accounts")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    start = sub.add_parser("start", help="run the authorisation flow for an account")
    start.add_argument("id")
    start.add_argument(
        "--code",
        metavar="CODE#STATE",
        help="the code shown after login: completes the authorisation started last",
    )
    start.add_argument("--no-browser", action="store_true", help="do not open a browser")
    start.add_argument("--json", action="store_true", help="machine-readable output")
    start.set_defaults(handler=cmd_start)

    for name, handler, text in (
        ("status", cmd_status, "show an account's token state"),
        ("refresh", cmd_refresh, "refresh an account's access token now"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("id")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(handler=handler)


# --- shared -----------------------------------------------------------------------


def _oauth_account(config: Config, account_id: str) -> UpstreamAccount:
    account = config.account_by_id(account_id)
    if account is None:
        raise CliError(
            f"no upstream account with id {account_id!r} (see 'llm-gateway upstream list')"
        )
    if account.type != "oauth":
        raise CliError(
            f"upstream account {account_id} is an {account.type} account; "
            "oauth commands apply to accounts added with --type oauth"
        )
    if account.provider not in FLOWS:
        raise CliError(f"no OAuth flow is available for provider {account.provider!r}")
    return account


def _start(ctx: Context, account_id: str, *options: str) -> str:
    """The ``oauth start`` command for an account, as the user runs the CLI."""
    return ctx.command(" ".join(("oauth start", account_id, *options)))


def _pasted_code_flow(account: UpstreamAccount) -> PastedCodeFlow:
    flow = FLOWS[account.provider]
    if not isinstance(flow, PastedCodeFlow):
        raise CliError(f"provider {account.provider!r} does not log in with a pasted code")
    return flow


def _section(document: dict[str, Any], account_id: str) -> dict[str, Any]:
    entry = records.find_entry(document, account_id)
    if entry is None:
        raise CliError(f"upstream account {account_id} was removed meanwhile")
    return records.oauth_section(entry)


def _pool(config: Config, environ: Mapping[str, str]) -> ConnectionPool:
    return ConnectionPool(
        proxy=ProxySettings.from_sources(config.environment.as_mapping(), environ)
    )


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    seconds = int(abs(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def status_view(entry: dict[str, Any], now: float) -> dict[str, Any]:
    """An OAuth account's token state, without any secret (for ``--json`` and text)."""
    oauth = entry.get("oauth") or {}
    expires_at = oauth.get("expires_at")
    needs_reauth = oauth.get("needs_reauth") is True
    has_tokens = bool(oauth.get("access_token"))
    return {
        "id": entry["id"],
        "name": entry.get("name", ""),
        "authorized": has_tokens and not needs_reauth,
        "needs_reauth": needs_reauth,
        "expires_at": expires_at,
        "expires_in": int(expires_at - now) if isinstance(expires_at, (int, float)) else None,
        "last_refresh": oauth.get("last_refresh"),
        "last_error": oauth.get("last_error"),
        "pending": bool(oauth.get("pending_state")),
        "account": _owner_part(oauth, "account", "email"),
        "organization": _owner_part(oauth, "organization", "name"),
    }


def _owner_part(oauth: dict[str, Any], part: str, label: str) -> dict[str, str] | None:
    """``{"uuid": ..., label: ...}`` as the token answer gave them, or None."""
    uuid, text = oauth.get(f"{part}_uuid"), oauth.get(f"{part}_{label}")
    if uuid is None and text is None:
        return None
    return {"uuid": uuid or "", label: text or ""}


def _owner_text(part: dict[str, str] | None, label: str) -> str:
    if part is None:
        return "-"
    if part[label] and part["uuid"]:
        return f"{part[label]} ({part['uuid']})"
    return part[label] or part["uuid"]


def _print_status(ctx: Context, view: dict[str, Any]) -> None:
    if view["needs_reauth"]:
        state = f"needs re-authorisation ({_start(ctx, view['id'])})"
    elif view["authorized"]:
        state = "authorised"
    else:
        state = "not authorised"
    expires = "-"
    if view["expires_at"] is not None:
        left = view["expires_in"]
        when = f"in {_duration(left)}" if left > 0 else f"expired {_duration(left)} ago"
        expires = f"{_iso(view['expires_at'])} ({when})"
    last_refresh = _iso(view["last_refresh"]) if view["last_refresh"] is not None else "-"
    rows = [
        ("account", f"{view['id']} ({view['name']})"),
        ("state", state),
        ("signed in as", _owner_text(view["account"], "email")),
        ("organisation", _owner_text(view["organization"], "name")),
        ("expires", expires),
        ("last refresh", last_refresh),
        ("last error", view["last_error"] or "-"),
    ]
    if view["pending"]:
        rows.append(("pending", "yes: " + _start(ctx, view["id"], "--code CODE#STATE")))
    for label, value in rows:
        ctx.out(f"{label + ':':14}{value}")


def _show(ctx: Context, account_id: str, as_json: bool, headline: str) -> None:
    entry = records.find_entry(ctx.store.read_document(), account_id)
    if entry is None:
        raise CliError(f"upstream account {account_id} was removed meanwhile")
    view = status_view(entry, time.time())
    if as_json:
        ctx.json(view)
        return
    ctx.out(headline)
    _print_status(ctx, view)


# --- oauth start ------------------------------------------------------------------


def _display_available(environ: Mapping[str, str]) -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def _open_browser(url: str) -> bool:
    try:
        return bool(webbrowser.open(url))
    except webbrowser.Error:
        return False


def cmd_start(args: argparse.Namespace, ctx: Context) -> int:
    config = ctx.store.load()
    account = _oauth_account(config, args.id)
    flow = _pasted_code_flow(account)
    if args.code is not None:
        return _complete(args, ctx, config, flow, args.code)
    key = load_secret_key(ctx.store.home, ctx.environ, create=True)
    verifier, state = make_verifier(), make_state()
    url = flow.login_url(config, s256_challenge(verifier), state)

    def mutate(document: dict[str, Any]) -> None:
        check_secret_key(document, key)
        records.write_pending(_section(document, args.id), key, args.id, state, verifier)

    ctx.store.update(mutate)
    opened = not args.no_browser and _display_available(ctx.environ) and _open_browser(url)
    finish = _start(ctx, args.id, "--code 'CODE#STATE'")
    if args.json:
        ctx.json(
            {"id": args.id, "authorize_url": url, "browser_opened": opened, "complete_with": finish}
        )
        return 0
    ctx.out("Open this URL in a browser, log in and authorise:")
    ctx.out()
    ctx.out(url)
    ctx.out()
    if opened:
        ctx.out("(A browser window was opened for you.)")
    if not ctx.stdin.isatty():
        ctx.out("Then paste the code shown (CODE#STATE) into:")
        ctx.out(f"  {finish}")
        return 0
    ctx.stdout.write("Paste the code shown after login (CODE#STATE): ")
    ctx.stdout.flush()
    pasted = ctx.stdin.readline()
    if not pasted.strip():
        raise CliError(f"no code entered; the authorisation is still pending: {finish}")
    return _complete(args, ctx, config, flow, pasted)


async def _exchange(
    config: Config,
    environ: Mapping[str, str],
    flow: PastedCodeFlow,
    request: TokenRequest,
    proxy: str | None,
) -> Tokens:
    pool = _pool(config, environ)
    try:
        answer = await post_token(pool, flow.token_endpoints(config), request, proxy=proxy)
        return flow.parse_token_response(
            answer.status, answer.body, now=time.time(), previous_refresh=None
        )
    finally:
        await pool.aclose()


def _complete(
    args: argparse.Namespace, ctx: Context, config: Config, flow: PastedCodeFlow, pasted: str
) -> int:
    try:
        code, state = parse_pasted_code(pasted)
    except PastedCodeError as exc:
        raise CliError(str(exc)) from None
    key = load_secret_key(ctx.store.home, ctx.environ, create=False)
    document = ctx.store.read_document()
    check_secret_key(document, key)  # before the code is spent on an exchange
    section = _section(document, args.id)
    sealed_state = section.get("pending_state")
    pending = records.read_pending(section, key, args.id)
    if pending is None:
        raise CliError(
            f"no authorisation in progress for account {args.id}: "
            f"run '{_start(ctx, args.id)}' first"
        )
    expected_state, verifier = pending
    if not secrets.compare_digest(state.encode(), expected_state.encode()):
        raise CliError(
            "the pasted code does not belong to the authorisation started last for account "
            f"{args.id} (state mismatch); nothing was stored. Paste the code shown for the "
            f"latest URL, or run '{_start(ctx, args.id)}' again"
        )
    request = flow.exchange_request(config, code, state, verifier)
    proxy = _oauth_account(config, args.id).proxy  # the login goes the account's way too
    try:
        tokens = asyncio.run(_exchange(config, ctx.environ, flow, request, proxy))
    except InvalidGrant:
        raise CliError(
            "the provider refused the code (invalid_grant): it may have expired or been used "
            f"already; run '{_start(ctx, args.id)}' again"
        ) from None
    except OAuthError as exc:
        raise CliError(f"the code exchange failed: {exc.message}") from None
    now = time.time()

    def mutate(document: dict[str, Any]) -> None:
        target = _section(document, args.id)
        records.forget_owner(target)
        records.write_tokens(target, key, args.id, tokens, now)
        if target.get("pending_state") == sealed_state:  # not replaced by a newer start
            records.clear_pending(target)

    ctx.store.update(mutate)
    _show(ctx, args.id, args.json, f"Upstream account {args.id} is authorised.")
    return 0


# --- oauth status / refresh -------------------------------------------------------------


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    _oauth_account(ctx.store.load(), args.id)
    _show(ctx, args.id, args.json, f"OAuth state of upstream account {args.id}:")
    return 0


async def _refresh(config: Config, ctx: Context, account_id: str) -> None:
    pool = _pool(config, ctx.environ)
    # with state.backend redis: the lease and the newest tokens the instances share
    async with token_share(config.state) as share:
        manager = TokenManager(
            ctx.store,
            pool,
            lambda: load_secret_key(ctx.store.home, ctx.environ, create=False),
            time.time,
            share=share,
        )
        try:
            await manager.refresh_now(account_id)
        finally:
            await manager.aclose()
            await pool.aclose()


def cmd_refresh(args: argparse.Namespace, ctx: Context) -> int:
    config = ctx.store.load()
    account = _oauth_account(config, args.id)
    if not account.oauth.refresh_token:
        raise CliError(
            f"upstream account {args.id} is not authorised yet: run '{_start(ctx, args.id)}'"
        )
    try:
        asyncio.run(_refresh(config, ctx, args.id))
    except ReauthorizationRequired as exc:
        raise CliError(exc.message) from None
    except OAuthError as exc:
        raise CliError(f"the refresh failed: {exc.message}") from None
    _show(ctx, args.id, args.json, f"Upstream account {args.id}: tokens refreshed.")
    return 0
