"""The admin endpoints: ``GET /admin`` (the page) and ``/admin/api/...`` (its data).

Theory of operation: the page itself is static package data with no data in
it, served without a key (a browser cannot send a header when it navigates);
everything it shows comes from the JSON endpoints, each of which wants a
gateway key with the ``admin`` permission, sent by the page's script as
``Authorization: Bearer``. The key is kept in the browser's session storage,
never in a URL. Refusals are the usual 401/403 in OpenAI's error shape.

Writes (enabling or disabling an account) go through ``ConfigStore.update``,
the locked read-modify-write the CLI uses, on a worker thread; the handler
then waits, at most ``APPLY_TIMEOUT`` seconds, until this process serves the
change (the reload watcher picks the file up), and says whether it did.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .. import __version__
from ..config.schema import GatewayKey
from ..config.store import ConfigStore
from ..errors import ConfigError, InvalidRequest, NotFound
from ..pipeline.auth import authenticate, authorize
from ..server.app import GatewayApp, GatewayState
from ..server.messages import Request, Response, json_response
from . import page, views

__all__ = ["APPLY_TIMEOUT", "AdminApi", "install_admin_routes"]

#: seconds a write waits for this process to serve the changed file
APPLY_TIMEOUT = 5.0
#: seconds between two looks at the served configuration while waiting
APPLY_POLL = 0.05

_NO_STORE = [("cache-control", "no-store")]


class AdminApi:
    """The admin handlers over one gateway's state and config store."""

    def __init__(
        self,
        state: GatewayState,
        store: ConfigStore,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.store = store
        self.wall = wall
        self.mono = mono

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
        self._admin(request)
        rows = [views.key_view(k) for k in self.state.config.gateway_keys]
        return json_response(200, {"keys": rows}, _NO_STORE)

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
    app.route("POST", "/admin/api/accounts/enabled", api.set_account_enabled)
