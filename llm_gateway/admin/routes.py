"""The admin endpoints: ``GET /admin`` (the page) and ``/admin/api/...`` (its data).

Theory of operation: the page itself is static package data with no data in
it, served without a key (a browser cannot send a header when it navigates);
everything it shows comes from the JSON endpoints, each of which wants a
gateway key with the ``admin`` permission, sent by the page's script as
``Authorization: Bearer``. The key is kept in the browser's session storage,
never in a URL. Refusals are the usual 401/403 in OpenAI's error shape.

Usage (``/admin/api/usage``: charts; ``/admin/api/requests``: the latest
requests) is read from the usage ledger on a worker thread, so a slow disk
never stalls the event loop; without a ledger both say ``"ledger": false``
and the page shows no usage panels.

Writes (enabling or disabling an account) go through ``ConfigStore.update``,
the locked read-modify-write the CLI uses, on a worker thread; the handler
then waits, at most ``APPLY_TIMEOUT`` seconds, until this process serves the
change (the reload watcher picks the file up), and says whether it did.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from .. import __version__
from ..config.schema import GatewayKey
from ..config.store import ConfigStore
from ..errors import ConfigError, InvalidRequest, NotFound, ServiceUnavailable
from ..ledger.query import BudgetUse, LedgerReader
from ..pipeline.auth import authenticate, authorize
from ..server.app import GatewayApp, GatewayState
from ..server.messages import Request, Response, json_response
from . import page, usage, views

__all__ = ["APPLY_TIMEOUT", "MAX_REQUESTS", "AdminApi", "install_admin_routes"]

T = TypeVar("T")

#: seconds a write waits for this process to serve the changed file
APPLY_TIMEOUT = 5.0
#: seconds between two looks at the served configuration while waiting
APPLY_POLL = 0.05

#: the most requests ``/admin/api/requests`` lists at once
MAX_REQUESTS = 500

_NO_STORE = [("cache-control", "no-store")]


def _no_ledger() -> LedgerReader | None:
    return None


class AdminApi:
    """The admin handlers over one gateway's state and config store."""

    def __init__(
        self,
        state: GatewayState,
        store: ConfigStore,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        ledger: Callable[[], LedgerReader | None] = _no_ledger,
    ) -> None:
        self.state = state
        self.store = store
        self.wall = wall
        self.mono = mono
        #: the usage ledger's reader, None while the ledger is off
        self.ledger = ledger

    def _admin(self, request: Request) -> GatewayKey:
        key = authenticate(request.header_map, self.state.config, self.wall())
        request.notes["key_id"] = key.id
        authorize(key, "admin")
        return key

    async def page(self, request: Request) -> Response:
        return page.response()

    async def status(self, request: Request) -> Response:
        self._admin(request)
        state = self.state
        body = views.status_view(
            state.config,
            version=__version__,
            config_path=state.config_path,
            config_error=state.config_error,
            restart_needed=state.restart_needed,
            uptime_s=self.mono() - state.started_at,
        )
        return json_response(200, body, _NO_STORE)

    async def accounts(self, request: Request) -> Response:
        self._admin(request)
        mono, wall = self.mono(), self.wall()
        rows = [
            views.account_view(a, self.state.health.snapshot(a.id, mono), mono, wall)
            for a in self.state.config.upstream_accounts
        ]
        return json_response(200, {"accounts": rows}, _NO_STORE)

    async def keys(self, request: Request) -> Response:
        """The keys; budgets' spend from the ledger (a ledger that cannot be read
        leaves the spend out and says why, instead of hiding the keys)."""
        self._admin(request)
        keys = self.state.config.gateway_keys
        reader, now = self.ledger(), self.wall()
        budgeted = [k for k in keys if k.budget is not None]
        uses: dict[str, BudgetUse] = {}
        body: dict[str, Any] = {}
        if reader is not None and budgeted:
            try:
                uses = await _from_ledger(
                    lambda: {k.id: reader.budget_use(k.id, k.budget_period, now) for k in budgeted}
                )
            except ServiceUnavailable as exc:
                body["ledger_error"] = exc.message
        body["keys"] = [views.key_view(k, uses.get(k.id)) for k in keys]
        return json_response(200, body, _NO_STORE)

    async def usage(self, request: Request) -> Response:
        """``?range=1h|24h|7d|30d&by=model|key|account``: chart series and totals."""
        self._admin(request)
        query = _query(request)
        by = query.get("by", "model")
        if by not in usage.BY:
            raise InvalidRequest(
                f"unknown 'by' {by!r}: use one of {', '.join(usage.BY)}", param="by"
            )
        win = usage.window(query.get("range", "24h"), self.wall())
        reader = self.ledger()
        if reader is None:
            return json_response(200, {"ledger": False}, _NO_STORE)
        points, rows, total = await _from_ledger(
            lambda: (
                reader.series(win.since, win.until, win.step, by=by),
                reader.summary(win.since, win.until, by=by),
                reader.total(win.since, win.until),
            )
        )
        labels = self._labels(by)
        body = usage.chart_data(points, win, labels)
        body["ledger"] = True
        body["by"] = by
        body["summary"] = [
            {**usage.summary_view(r), "label": labels.get(r.group, r.group)} for r in rows
        ]
        body["total"] = usage.summary_view(total)
        return json_response(200, body, _NO_STORE)

    async def requests(self, request: Request) -> Response:
        """``?limit=N``: the latest finished requests, newest first."""
        self._admin(request)
        raw = _query(request).get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_REQUESTS:
            raise InvalidRequest(f"'limit' must be 1 to {MAX_REQUESTS}", param="limit")
        reader = self.ledger()
        if reader is None:
            return json_response(200, {"ledger": False}, _NO_STORE)
        records = await _from_ledger(lambda: reader.recent(int(raw)))
        keys, accounts = self._labels("key"), self._labels("account")
        rows = [usage.record_view(r, keys, accounts) for r in records]
        return json_response(200, {"ledger": True, "requests": rows}, _NO_STORE)

    def _labels(self, by: str) -> dict[str, str]:
        """Names for the groups' ids (keys and accounts have names in the config)."""
        config = self.state.config
        if by == "key":
            return {k.id: k.name for k in config.gateway_keys}
        if by == "account":
            return {a.id: a.name for a in config.upstream_accounts}
        return {}

    async def set_account_enabled(self, request: Request) -> Response:
        """``{"id": ..., "enabled": true|false}``: what ``upstream enable|disable`` does."""
        self._admin(request)
        account_id, enabled = _toggle_body(request.body)
        if self.state.config.account_by_id(account_id) is None:
            raise NotFound(f"no upstream account with id {account_id!r}")
        moment = datetime.fromtimestamp(self.wall(), timezone.utc)

        def mutate(document: dict[str, Any]) -> None:
            for entry in document.get("upstream_accounts") or []:
                if isinstance(entry, dict) and entry.get("id") == account_id:
                    entry["enabled"] = enabled
                    if enabled:
                        entry["enabled_at"] = moment.isoformat(timespec="microseconds")
                    return
            raise NotFound(f"no upstream account with id {account_id!r}")

        try:
            await asyncio.to_thread(self.store.update, mutate)
        except ConfigError as exc:
            raise InvalidRequest(
                f"the configuration cannot be changed now: {exc}", status=409
            ) from None
        applied = await self._served(account_id, enabled)
        return json_response(
            200, {"id": account_id, "enabled": enabled, "applied": applied}, _NO_STORE
        )

    async def _served(self, account_id: str, enabled: bool) -> bool:
        """True once this process routes by the written setting (or it is gone)."""
        deadline = self.mono() + APPLY_TIMEOUT
        while True:
            account = self.state.config.account_by_id(account_id)
            if account is None or account.enabled == enabled:
                return True
            if self.mono() >= deadline:
                return False
            await asyncio.sleep(APPLY_POLL)


async def _from_ledger(read: Callable[[], T]) -> T:
    """``read`` on a worker thread; a ledger that cannot be read is a 503 that says so."""
    try:
        return await asyncio.to_thread(read)
    except sqlite3.Error as exc:
        raise ServiceUnavailable(f"the usage ledger cannot be read now: {exc}") from None


def _query(request: Request) -> dict[str, str]:
    """The query string's parameters (the first value of each)."""
    parsed = urllib.parse.parse_qs(request.query, keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items()}


def _toggle_body(body: bytes) -> tuple[str, bool]:
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest('the body must be a JSON object: {"id": "...", "enabled": true}')
    account_id, enabled = data.get("id"), data.get("enabled")
    if not isinstance(account_id, str) or not account_id:
        raise InvalidRequest("'id' must be an upstream account id (a string)", param="id")
    if not isinstance(enabled, bool):
        raise InvalidRequest("'enabled' must be true or false", param="enabled")
    return account_id, enabled


def install_admin_routes(app: GatewayApp, api: AdminApi) -> None:
    """Register the page and its JSON endpoints on ``app``."""
    app.route("GET", "/admin", api.page)
    app.route("GET", "/admin/api/status", api.status)
    app.route("GET", "/admin/api/accounts", api.accounts)
    app.route("GET", "/admin/api/keys", api.keys)
    app.route("GET", "/admin/api/usage", api.usage)
    app.route("GET", "/admin/api/requests", api.requests)
    app.route("POST", "/admin/api/accounts/enabled", api.set_account_enabled)
