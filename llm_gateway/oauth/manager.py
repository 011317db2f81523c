"""Access tokens for OAuth accounts: handed out, refreshed in time, saved first.

Theory of operation. The manager keeps, per account, the access token it last
saw or obtained (``_Held``: sealed value, clear value, expiry). The account the
request path passes in may be a little stale (the runtime reloads the file
about once a second), so the newer of the two wins: a token the manager has
just refreshed beats the older one still in memory; a token re-authorised by
``oauth start`` (a later expiry) beats the held one.

A refresh is *single-flight* per account: the first caller starts one task and
every concurrent caller awaits the same task (shielded, so a caller that gives
up does not cancel it for the others); exactly one token request goes out.
Across processes the account's ``refresh_lock`` serialises refreshes; across
hosts (``state.backend: redis``) a ``TokenShare`` lease does too, and the
share holds the newest tokens (``refresh_lock.hold``). Inside both, one
refresh is:

1. re-read the configuration file (the truth another process may have
   changed) and, with a share, its tokens when they are newer than the
   file's (another host refreshed); if they are good enough for the goal
   (valid long enough, and not the token the upstream just rejected), adopt
   them and send nothing;
2. otherwise POST the refresh request (``token_client``: fallback URL and
   back-off on transient failures included) with the file's refresh token;
3. save the answer *before* using it: first to the share, whose fence
   refuses it if a newer lease holder got there first (then theirs is
   adopted); then to the file: ``ConfigStore.update`` re-reads the file
   under its lock and, if the sealed refresh token there is still the one we
   spent, writes the new sealed tokens, expiry and ``last_refresh`` and clears
   ``last_error``/``needs_reauth``; if it changed meanwhile, the file's tokens
   are adopted instead of overwritten;
4. ``invalid_grant`` marks the account ``needs_reauth`` (unless the refresh
   token changed meanwhile, see 3) and raises ``ReauthorizationRequired``;
   other failures record ``last_error`` and raise ``OAuthError`` (its
   ``rejects_credentials`` says whether the request path should take the
   account out: only for 401/403, not for a passing fault). A token that
   is within the margin but not yet expired is still handed out when its
   refresh fails, and no new refresh is tried for ``retry_after_failure``
   seconds.

The clock is wall-clock seconds since the epoch (expiries are stored in the
shared file). File operations run in a worker thread; tokens never reach a
log line or an exception message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..config.schema import Config, OAuthSettings, OAuthState, UpstreamAccount
from ..config.store import ConfigStore
from ..errors import ConfigError, GatewayError
from ..upstream.pool import ConnectionPool
from ..upstream.timeouts import Timeouts
from . import records
from .errors import InvalidGrant, OAuthError, ReauthorizationRequired, TokenStoreError
from .flow import Tokens
from .refresh_lock import LOCK_WAIT, Lease, SharedTokens, TokenShare, hold
from .registry import FLOWS, flow_for
from .token_client import RETRY_WAITS, TOKEN_TIMEOUTS, post_token

__all__ = ["TokenManager"]

log = logging.getLogger("llm_gateway.oauth")

T = TypeVar("T")

#: after a failed refresh, a still valid token is used this long before trying again
RETRY_AFTER_FAILURE = 30.0


@dataclass(frozen=True, slots=True)
class _Held:
    sealed: str
    access: str = field(repr=False)
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class _Goal:
    """What a refresh must achieve.

    ``min_validity``: a stored token valid at least this long is good enough
    (None: always ask the provider). ``avoid``: never settle for this token
    (the one the upstream just rejected).
    """

    min_validity: float | None
    avoid: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class _Stored:
    """An account's token fields as found in the file during an update."""

    access_token: str | None
    expires_at: float | None
    needs_reauth: bool


def _expiring(expires_at: float | None, now: float, within: float) -> bool:
    return expires_at is not None and expires_at - now <= within


def _stored(section: dict[str, Any]) -> _Stored:
    access, expires = section.get("access_token"), section.get("expires_at")
    return _Stored(
        access_token=access if isinstance(access, str) else None,
        expires_at=float(expires) if isinstance(expires, (int, float)) else None,
        needs_reauth=section.get("needs_reauth") is True,
    )


class TokenManager:
    """Hands out OAuth access tokens and keeps them fresh; see the module docstring."""

    def __init__(
        self,
        store: ConfigStore,
        pool: ConnectionPool,
        secret_key_loader: Callable[[], bytes],
        clock: Callable[[], float] = time.time,
        *,
        settings: Callable[[], OAuthSettings] | None = None,
        timeouts: Timeouts = TOKEN_TIMEOUTS,
        retry_waits: Sequence[float] = RETRY_WAITS,
        lock_wait: float = LOCK_WAIT,
        retry_after_failure: float = RETRY_AFTER_FAILURE,
        share: TokenShare | None = None,
    ) -> None:
        self._store = store
        self._pool = pool
        self._secret_key_loader = secret_key_loader
        self._clock = clock
        self._settings = settings
        self._file_settings = OAuthSettings()
        self._timeouts = timeouts
        self._retry_waits = tuple(retry_waits)
        self._lock_wait = lock_wait
        self._retry_after_failure = retry_after_failure
        self._share = share
        self._held: dict[str, _Held] = {}
        self._inflight: dict[str, asyncio.Task[str]] = {}
        self._failed_at: dict[str, float] = {}
        #: account id -> the sealed refresh token the provider refused
        self._refused: dict[str, str] = {}
        #: told of each refresh at the token endpoint: (account id, succeeded)
        self.on_refresh: Callable[[str, bool], None] = lambda account_id, ok: None

    # -- the public face -----------------------------------------------------------

    async def access_token(self, account: UpstreamAccount) -> str:
        """The clear access token for ``account``, refreshed first when it expires soon.

        Raises ``ReauthorizationRequired`` when the account is not (or no longer)
        authorised, ``OAuthError`` when a needed refresh failed and the token
        has expired.
        """
        held = self._current(account)
        now, margin = self._clock(), self._margin()
        if not _expiring(held.expires_at, now, margin):
            return held.access
        still_valid = not _expiring(held.expires_at, now, 0.0)
        failed = self._failed_at.get(account.id)
        if still_valid and failed is not None and now - failed < self._retry_after_failure:
            return held.access
        try:
            return await self._single_flight(account.id, _Goal(min_validity=margin))
        except ReauthorizationRequired:
            raise
        except OAuthError:
            if still_valid:
                return held.access
            raise

    async def refresh_after_401(self, account_id: str, rejected_token: str) -> str:
        """A new access token after the upstream rejected ``rejected_token``.

        If another refresh already replaced that token, its result is returned
        without a new token request; concurrent callers share one refresh.
        """
        held = self._held.get(account_id)
        if (
            held is not None
            and held.access != rejected_token
            and not _expiring(held.expires_at, self._clock(), 0.0)
        ):
            return held.access
        task = self._inflight.get(account_id)
        if task is not None and not task.done():
            token = await asyncio.shield(task)
            if token != rejected_token:
                return token
        goal = _Goal(min_validity=self._margin(), avoid=rejected_token)
        return await self._single_flight(account_id, goal)

    async def refresh_now(self, account_id: str) -> str:
        """Ask the provider for new tokens now (``llm-gateway oauth refresh``)."""
        return await self._single_flight(account_id, _Goal(min_validity=None))

    async def refresh_due(self, accounts: Sequence[UpstreamAccount], *, horizon: float) -> None:
        """One background pass: refresh tokens that expire within margin + ``horizon``.

        Failures are logged, never raised.
        """
        for account in accounts:
            if account.type != "oauth" or not account.enabled or account.provider not in FLOWS:
                continue
            try:
                held = self._current(account)
            except OAuthError:
                continue  # not authorised, or waiting for re-authorisation
            within = self._margin() + horizon
            if not _expiring(held.expires_at, self._clock(), within):
                continue
            try:
                await self._single_flight(account.id, _Goal(min_validity=within))
            except GatewayError as error:
                log.warning(
                    "background token refresh failed",
                    extra={"account_id": account.id, "error": error.message},
                )

    async def run_background(
        self,
        accounts_provider: Callable[[], Sequence[UpstreamAccount]],
        interval: float = 60.0,
    ) -> None:
        """Refresh ahead of expiry every ``interval`` seconds, until cancelled."""
        while True:
            try:
                await self.refresh_due(accounts_provider(), horizon=interval)
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must survive a bug in one pass; say so loudly
                log.exception("background token refresh pass failed")
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        """Cancel refreshes still running (at shutdown)."""
        tasks = [task for task in self._inflight.values() if not task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, GatewayError):
                await task

    # -- in memory -------------------------------------------------------------------

    def _margin(self) -> float:
        settings = self._settings() if self._settings is not None else self._file_settings
        return settings.refresh_margin

    def _current(self, account: UpstreamAccount) -> _Held:
        """The newest access token known for ``account`` (held, or from its config)."""
        if account.type != "oauth":
            raise OAuthError(f"upstream account {account.id} is not an oauth account")
        state = account.oauth
        held = self._held.get(account.id)
        if held is not None and (
            not state.access_token
            or state.access_token == held.sealed
            or (held.expires_at or 0.0) >= (state.expires_at or 0.0)
        ):
            return held
        refused = self._refused.get(account.id)
        if state.needs_reauth or (refused is not None and refused == state.refresh_token):
            raise ReauthorizationRequired(
                f"upstream account {account.id} needs re-authorisation "
                f"(llm-gateway oauth start {account.id})"
            )
        if not state.access_token:
            raise ReauthorizationRequired(
                f"upstream account {account.id} is not authorised yet "
                f"(llm-gateway oauth start {account.id})"
            )
        access = self._unseal(account.id, "access_token", state.access_token)
        held = _Held(state.access_token, access, state.expires_at)
        self._held[account.id] = held
        return held

    def _single_flight(self, account_id: str, goal: _Goal) -> asyncio.Future[str]:
        task = self._inflight.get(account_id)
        if task is None or task.done():
            task = asyncio.ensure_future(self._refresh(account_id, goal))
            self._inflight[account_id] = task
            task.add_done_callback(functools.partial(self._finished, account_id))
        return asyncio.shield(task)

    def _finished(self, account_id: str, task: asyncio.Task[str]) -> None:
        if self._inflight.get(account_id) is task:
            del self._inflight[account_id]
        if not task.cancelled():
            task.exception()  # retrieved here, so an unawaited failure is not reported twice

    def _key(self) -> bytes:
        try:
            return self._secret_key_loader()
        except ConfigError as exc:
            raise TokenStoreError(f"cannot load the secret key: {exc}") from None

    def _unseal(self, account_id: str, field_name: str, sealed: str) -> str:
        try:
            return records.unseal_field(self._key(), account_id, field_name, sealed)
        except ConfigError:
            raise TokenStoreError(
                f"the {field_name} of upstream account {account_id} cannot be decrypted "
                "(wrong secret key?)"
            ) from None

    # -- one refresh -------------------------------------------------------------------

    async def _refresh(self, account_id: str, goal: _Goal) -> str:
        async with hold(
            self._store.home, account_id, wait=self._lock_wait, share=self._share
        ) as lease:
            config = await self._load()
            account = config.account_by_id(account_id)
            if account is None or account.type != "oauth":
                raise OAuthError(f"upstream account {account_id} is not an oauth account")
            in_file = account.oauth.refresh_token
            if lease is not None:
                account = await self._newest(account)
            state = account.oauth
            if state.needs_reauth or not state.refresh_token:
                self._held.pop(account_id, None)
                if state.refresh_token:
                    self._refused[account_id] = state.refresh_token
                what = "needs re-authorisation" if state.needs_reauth else "is not authorised yet"
                raise ReauthorizationRequired(
                    f"upstream account {account_id} {what} (llm-gateway oauth start {account_id})"
                )
            adopted = self._adopt(account.id, state, goal)
            if adopted is not None:
                return adopted
            flow = flow_for(account)
            spent = state.refresh_token
            assert spent is not None
            refresh_token = self._unseal(account_id, "refresh_token", spent)
            try:
                answer = await post_token(
                    self._pool,
                    flow.token_endpoints(config),
                    flow.refresh_request(config, refresh_token),
                    timeouts=self._timeouts,
                    retry_waits=self._retry_waits,
                    proxy=account.proxy,
                )
                tokens = flow.parse_token_response(
                    answer.status, answer.body, now=self._clock(), previous_refresh=refresh_token
                )
            except InvalidGrant as error:
                self.on_refresh(account_id, False)
                return await self._on_invalid_grant(account_id, in_file or spent, error)
            except OAuthError as error:
                self.on_refresh(account_id, False)
                self._failed_at[account_id] = self._clock()
                log.warning(
                    "token refresh failed", extra={"account_id": account_id, "error": error.message}
                )
                await self._record_error(account_id, spent, error.message)
                raise
            self.on_refresh(account_id, True)
            if lease is not None and not await self._publish(lease, tokens):
                return await self._take_shared(account_id)
            return await self._persist(account_id, in_file, tokens, shared=lease is not None)

    async def _newest(self, account: UpstreamAccount) -> UpstreamAccount:
        """``account`` with the share's tokens when they are newer than its file's."""
        assert self._share is not None
        theirs = await self._share.read(account.id)
        state = account.oauth
        if theirs is None or (theirs.last_refresh or 0.0) <= (state.last_refresh or 0.0):
            return account
        newer = replace(
            state,
            access_token=theirs.access_token,
            refresh_token=theirs.refresh_token,
            expires_at=theirs.expires_at,
            last_refresh=theirs.last_refresh,
            needs_reauth=False,
        )
        return replace(account, oauth=newer)

    async def _publish(self, lease: Lease, tokens: Tokens) -> bool:
        """Offer fresh tokens to the share, sealed as in the file; False when fenced out."""
        assert self._share is not None
        section: dict[str, Any] = {}
        records.write_tokens(section, self._key(), lease.account_id, tokens, self._clock())
        sealed = SharedTokens(
            access_token=section["access_token"],
            refresh_token=section.get("refresh_token"),
            expires_at=section.get("expires_at"),
            last_refresh=section["last_refresh"],
        )
        return await self._share.publish(lease, sealed)

    async def _take_shared(self, account_id: str) -> str:
        """The tokens a newer lease holder published (ours were fenced out)."""
        assert self._share is not None
        theirs = await self._share.read(account_id)
        if theirs is None:
            raise OAuthError(f"the new tokens of upstream account {account_id} were lost")
        stored = _Stored(theirs.access_token, theirs.expires_at, needs_reauth=False)
        return self._take_theirs(account_id, stored)

    def _adopt(self, account_id: str, state: OAuthState, goal: _Goal) -> str | None:
        """The stored access token, when it already meets ``goal``."""
        if goal.min_validity is None or not state.access_token:
            return None
        if _expiring(state.expires_at, self._clock(), goal.min_validity):
            return None
        access = self._unseal(account_id, "access_token", state.access_token)
        if access == goal.avoid:
            return None
        self._held[account_id] = _Held(state.access_token, access, state.expires_at)
        return access

    async def _persist(
        self, account_id: str, spent: str | None, tokens: Tokens, *, shared: bool = False
    ) -> str:
        """Save fresh tokens in the file, unless another process changed its
        tokens since ``spent`` was read (then theirs are used, unless the
        share already took ours: ``shared``)."""
        key, now = self._key(), self._clock()

        def mutate(document: dict[str, Any]) -> tuple[bool, _Stored]:
            section = self._section(document, account_id)
            if section.get("refresh_token") != spent:
                return False, _stored(section)  # another process refreshed meanwhile
            records.write_tokens(section, key, account_id, tokens, now)
            return True, _stored(section)

        try:
            written, stored = await self._update(mutate)
        except OAuthError as error:
            if not shared:
                raise
            # the share holds them for every instance: the file's copy is a convenience
            log.warning(
                "could not save the refreshed tokens in the file (they are in the shared state)",
                extra={"account_id": account_id, "error": error.message},
            )
            written, stored = False, _Stored(None, None, needs_reauth=False)
        if not written and not shared:
            return self._take_theirs(account_id, stored)
        sealed = (stored.access_token or "") if written else ""
        self._held[account_id] = _Held(sealed, tokens.access_token, tokens.expires_at)
        self._failed_at.pop(account_id, None)
        self._refused.pop(account_id, None)
        log.info("oauth tokens refreshed", extra={"account_id": account_id})
        return tokens.access_token

    def _take_theirs(self, account_id: str, theirs: _Stored) -> str:
        if theirs.needs_reauth or not theirs.access_token:
            self._held.pop(account_id, None)
            raise ReauthorizationRequired(
                f"upstream account {account_id} needs re-authorisation "
                f"(llm-gateway oauth start {account_id})"
            )
        access = self._unseal(account_id, "access_token", theirs.access_token)
        self._held[account_id] = _Held(theirs.access_token, access, theirs.expires_at)
        log.info("oauth tokens refreshed by another process", extra={"account_id": account_id})
        return access

    async def _on_invalid_grant(self, account_id: str, spent: str, error: InvalidGrant) -> str:
        code = error.error_code or "invalid_grant"
        message = f"the refresh token was refused ({code}); authorise again with 'oauth start'"

        def mutate(document: dict[str, Any]) -> _Stored | None:
            section = self._section(document, account_id)
            if section.get("refresh_token") != spent:
                return _stored(section)
            records.mark_reauth(section, message)
            return None

        theirs = await self._update(mutate)
        if theirs is not None:
            return self._take_theirs(account_id, theirs)
        self._held.pop(account_id, None)
        self._refused[account_id] = spent
        log.error(
            "oauth account needs re-authorisation",
            extra={"account_id": account_id, "reason": code},
        )
        raise ReauthorizationRequired(
            f"upstream account {account_id} needs re-authorisation: the provider refused its "
            f"refresh token ({code}); run 'llm-gateway oauth start {account_id}'",
            http_status=error.http_status,
            error_code=error.error_code,
        )

    async def _record_error(self, account_id: str, spent: str, message: str) -> None:
        """Best effort: note the failure for ``oauth status``; never raises."""

        def mutate(document: dict[str, Any]) -> None:
            section = self._section(document, account_id)
            if section.get("refresh_token") == spent:
                records.set_error(section, message)

        try:
            await self._update(mutate)
        except OAuthError as error:
            log.warning(
                "could not record the refresh failure",
                extra={"account_id": account_id, "error": error.message},
            )

    # -- the file ------------------------------------------------------------------------

    @staticmethod
    def _section(document: dict[str, Any], account_id: str) -> dict[str, Any]:
        entry = records.find_entry(document, account_id)
        if entry is None:
            raise OAuthError(f"upstream account {account_id} no longer exists")
        return records.oauth_section(entry)

    async def _load(self) -> Config:
        try:
            config = await asyncio.to_thread(self._store.load, create=False)
        except ConfigError as exc:
            raise TokenStoreError(f"cannot read the configuration: {exc}") from None
        self._file_settings = config.oauth
        return config

    async def _update(self, mutate: Callable[[dict[str, Any]], T]) -> T:
        try:
            return await asyncio.to_thread(self._store.update, mutate)
        except ConfigError as exc:
            raise TokenStoreError(f"cannot save the tokens: {exc}") from None
