"""``TokenManager``: access tokens handed out, refreshed in time, single-flight, saved first.

Each test authorises one OAuth account with tokens minted by the fake provider
(see ``test_oauth_fakes``), drives the manager with a fake clock, and checks
what went over the wire and what the configuration file holds afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import async_wait_until, free_port, run, run_cli
from test_oauth_fakes import (  # noqa: F401 (oauth_server is a fixture)
    CLIENT_ID,
    FALLBACK_PATH,
    HTML_403,
    JSON_500,
    NO_ANSWER,
    TOKEN_PATH,
    FakeOAuthServer,
    assert_no_secrets,
    oauth_server,
    point_oauth_at,
    store_of,
)

from llm_gateway.config.accounts import UpstreamAccount
from llm_gateway.config.store import ConfigStore
from llm_gateway.crypto.sealing import load_secret_key
from llm_gateway.oauth import records
from llm_gateway.oauth.errors import (
    EndpointRefused,
    OAuthError,
    ReauthorizationRequired,
    TokenStoreError,
)
from llm_gateway.oauth.flow import Tokens
from llm_gateway.oauth.manager import TokenManager
from llm_gateway.upstream.pool import ConnectionPool
from llm_gateway.upstream.timeouts import Timeouts

NOW = 1_700_000_000.0
LIFETIME = 3600.0
MARGIN = 300.0


@dataclass
class World:
    home: Path
    store: ConfigStore
    fake: FakeOAuthServer
    account_id: str
    now: list[float] = field(default_factory=lambda: [NOW])

    def clock(self) -> float:
        return self.now[0]

    def account(self) -> UpstreamAccount:
        account = self.store.load().account_by_id(self.account_id)
        assert account is not None
        return account

    def section(self) -> dict[str, Any]:
        entry = records.find_entry(self.store.read_document(), self.account_id)
        assert entry is not None
        return records.oauth_section(entry)

    def clear(self, name: str) -> str:
        key = load_secret_key(self.home, {}, create=False)
        return records.unseal_field(key, self.account_id, name, self.section()[name])

    def write_tokens(self, answer: dict[str, Any], expires_at: float) -> None:
        """What a completed ``oauth start`` (or another process) leaves in the file."""
        key = load_secret_key(self.home, {}, create=False)
        tokens = Tokens(answer["access_token"], answer["refresh_token"], expires_at)

        def mutate(document: dict[str, Any]) -> None:
            entry = records.find_entry(document, self.account_id)
            assert entry is not None
            records.write_tokens(records.oauth_section(entry), key, self.account_id, tokens, NOW)

        self.store.update(mutate)

    def manager(self, pool: ConnectionPool, **options: Any) -> TokenManager:
        return TokenManager(
            self.store,
            pool,
            lambda: load_secret_key(self.home, {}, create=False),
            self.clock,
            **options,
        )

    def refreshes(self) -> list[str]:
        """The refresh tokens presented to the provider, in order."""
        return [c.body["refresh_token"] for c in self.fake.token_calls("refresh_token")]


@pytest.fixture
def world(home: Path, oauth_server: FakeOAuthServer) -> Iterator[World]:  # noqa: F811
    view = run_cli("upstream", "add", "--type", "oauth", "--provider", "anthropic",
                   "--name", "max", "--json").json()  # fmt: skip
    store = store_of(home)
    point_oauth_at(store, oauth_server)
    w = World(home, store, oauth_server, view["id"])
    w.write_tokens(oauth_server.issue(), NOW + LIFETIME)
    yield w


def scenario(world: World, body: Any, **options: Any) -> Any:
    """Run ``body(manager)`` with a fresh pool; close both afterwards."""

    async def go() -> Any:
        pool = ConnectionPool()
        manager = world.manager(pool, **options)
        try:
            return await body(manager)
        finally:
            await manager.aclose()
            await pool.aclose()

    return run(go())


# --- handing out and refreshing -----------------------------------------------------------


def test_a_fresh_token_is_handed_out_without_a_token_request(world: World) -> None:
    account = world.account()
    world.now[0] = NOW + LIFETIME - MARGIN - 1

    async def body(manager: TokenManager) -> str:
        return await manager.access_token(account)

    assert scenario(world, body) == world.fake.issued[0]
    assert world.fake.token_calls() == []


def test_expiry_forces_a_refresh_which_is_saved_before_use(world: World) -> None:
    account = world.account()
    world.now[0] = NOW + LIFETIME - MARGIN + 1  # inside the refresh margin

    async def body(manager: TokenManager) -> tuple[str, str]:
        return await manager.access_token(account), await manager.access_token(account)

    first, again = scenario(world, body)
    new_access, new_refresh = world.fake.issued[2:4]
    assert first == again == new_access
    (call,) = world.fake.token_calls()
    assert call.path == TOKEN_PATH
    assert call.body == {
        "grant_type": "refresh_token",
        "refresh_token": world.fake.issued[1],
        "client_id": CLIENT_ID,
    }
    assert world.clear("access_token") == new_access
    assert world.clear("refresh_token") == new_refresh
    section = world.section()
    assert section["expires_at"] == world.now[0] + world.fake.expires_in
    assert section["last_refresh"] == world.now[0]
    assert_no_secrets(world.store.path.read_text(), world.fake)


def test_fifty_concurrent_requests_at_expiry_cause_exactly_one_refresh(world: World) -> None:
    """They share one refresh in memory: none even waits for the cross-process lock."""
    account = world.account()
    world.now[0] = NOW + LIFETIME + 10  # expired
    world.fake.gate = threading.Event()

    async def body(manager: TokenManager) -> list[str]:
        calls = asyncio.gather(*(manager.access_token(account) for _ in range(50)))
        await async_wait_until(lambda: world.fake.token_calls(), 10, "the refresh request")
        for _ in range(20):  # let every caller run while the refresh is held
            await asyncio.sleep(0)
        assert world.fake.gate is not None
        world.fake.gate.set()
        return list(await calls)

    tokens = scenario(world, body, lock_wait=0.0)
    assert len(world.fake.token_calls()) == 1
    assert tokens == [world.fake.issued[2]] * 50


def test_a_caller_giving_up_does_not_cancel_the_refresh_for_the_others(world: World) -> None:
    account = world.account()
    world.now[0] = NOW + LIFETIME + 10
    world.fake.gate = threading.Event()

    async def body(manager: TokenManager) -> str:
        impatient = asyncio.ensure_future(manager.access_token(account))
        patient = asyncio.ensure_future(manager.access_token(account))
        await async_wait_until(lambda: world.fake.token_calls(), 10, "the refresh request")
        impatient.cancel()  # e.g. its client went away
        with pytest.raises(asyncio.CancelledError):
            await impatient
        assert world.fake.gate is not None
        world.fake.gate.set()
        return await patient

    assert scenario(world, body) == world.fake.issued[2]
    assert world.clear("access_token") == world.fake.issued[2]


def test_a_rotated_refresh_token_is_persisted_and_used_next_time(world: World) -> None:
    account = world.account()

    async def body(manager: TokenManager) -> None:
        world.now[0] = NOW + LIFETIME - 1
        await manager.access_token(account)
        world.now[0] += world.fake.expires_in
        await manager.access_token(account)  # the stale account object: the manager knows better

    scenario(world, body)
    issued = world.fake.issued
    assert world.refreshes() == [issued[1], issued[3]]
    # a new process (a new manager, the account as the file has it) goes on from there
    world.now[0] += world.fake.expires_in

    async def later(manager: TokenManager) -> str:
        return await manager.access_token(world.account())

    assert scenario(world, later) == world.fake.issued[6]
    assert world.refreshes()[-1] == issued[5]
    assert world.clear("refresh_token") == world.fake.issued[7]


def test_invalid_grant_marks_the_account_for_reauthorisation(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = world.account()
    world.now[0] = NOW + LIFETIME + 1
    world.fake.revoke()

    async def body(manager: TokenManager) -> list[ReauthorizationRequired]:
        errors = []
        for candidate in (account, account, world.account()):
            with pytest.raises(ReauthorizationRequired) as caught:
                await manager.access_token(candidate)
            errors.append(caught.value)
        return errors

    errors = scenario(world, body)
    assert len(world.fake.token_calls()) == 1  # the later calls knew without asking
    assert errors[0].status == 502
    assert errors[0].message == (
        f"upstream account {world.account_id} needs re-authorisation: the provider refused its "
        f"refresh token (invalid_grant); run 'llm-gateway oauth start {world.account_id}'"
    )
    section = world.section()
    assert section["needs_reauth"] is True
    assert section["last_error"] == (
        "the refresh token was refused (invalid_grant); authorise again with 'oauth start'"
    )
    assert world.account().oauth.needs_reauth
    # the provider's error description quoted the refresh token: it went nowhere
    assert_no_secrets(caplog.text + " ".join(str(e) for e in errors), world.fake)
    assert "oauth account needs re-authorisation" in caplog.text


def test_an_unauthorised_account_is_refused_without_a_request(world: World) -> None:
    view = run_cli("upstream", "add", "--type", "oauth", "--provider", "anthropic",
                   "--name", "new", "--json").json()  # fmt: skip
    account = world.store.load().account_by_id(view["id"])
    assert account is not None

    async def body(manager: TokenManager) -> None:
        with pytest.raises(ReauthorizationRequired, match="is not authorised yet"):
            await manager.access_token(account)

    scenario(world, body)
    assert world.fake.token_calls() == []


# --- after a 401 ---------------------------------------------------------------------------


def test_refresh_after_401_is_single_flight_and_remembers_the_replacement(world: World) -> None:
    account = world.account()
    world.fake.gate = threading.Event()

    async def body(manager: TokenManager) -> tuple[str, list[str], str]:
        rejected = await manager.access_token(account)  # valid for an hour, yet rejected
        retries = asyncio.gather(
            *(manager.refresh_after_401(world.account_id, rejected) for _ in range(10))
        )
        await async_wait_until(lambda: world.fake.token_calls(), 10, "the refresh request")
        for _ in range(20):
            await asyncio.sleep(0)
        assert world.fake.gate is not None
        world.fake.gate.set()
        results = list(await retries)
        late = await manager.refresh_after_401(world.account_id, rejected)
        return rejected, results, late

    rejected, results, late = scenario(world, body)
    assert rejected == world.fake.issued[0]
    assert len(world.fake.token_calls()) == 1
    assert results == [world.fake.issued[2]] * 10
    assert late == world.fake.issued[2]  # already replaced: no second refresh
    assert world.clear("access_token") == world.fake.issued[2]


def test_a_second_401_on_the_new_token_refreshes_again(world: World) -> None:
    account = world.account()

    async def body(manager: TokenManager) -> list[str]:
        first = await manager.access_token(account)
        second = await manager.refresh_after_401(world.account_id, first)
        third = await manager.refresh_after_401(world.account_id, second)
        return [first, second, third]

    tokens = scenario(world, body)
    issued = world.fake.issued
    assert tokens == [issued[0], issued[2], issued[4]]
    assert world.refreshes() == [issued[1], issued[3]]


# --- other processes ------------------------------------------------------------------------


def test_tokens_another_process_refreshed_are_adopted_without_a_request(world: World) -> None:
    stale = world.account()
    world.now[0] = NOW + LIFETIME - 10

    async def body(manager: TokenManager) -> str:
        other_pool = ConnectionPool()
        other = world.manager(other_pool)
        try:
            await other.refresh_now(world.account_id)
        finally:
            await other.aclose()
            await other_pool.aclose()
        return await manager.access_token(stale)

    assert scenario(world, body) == world.fake.issued[2]
    assert len(world.fake.token_calls()) == 1


def test_two_processes_at_expiry_send_one_refresh(world: World) -> None:
    account = world.account()
    world.now[0] = NOW + LIFETIME + 1

    async def body(manager: TokenManager) -> list[str]:
        other_pool = ConnectionPool()
        other = world.manager(other_pool)
        try:
            return list(
                await asyncio.gather(manager.access_token(account), other.access_token(account))
            )
        finally:
            await other.aclose()
            await other_pool.aclose()

    assert scenario(world, body) == [world.fake.issued[2]] * 2
    assert len(world.fake.token_calls()) == 1


def test_tokens_written_meanwhile_win_over_our_refresh(world: World) -> None:
    """Someone re-authorised while our refresh was in flight: theirs stay, ours are dropped."""
    account = world.account()
    world.now[0] = NOW + LIFETIME + 1
    world.fake.gate = threading.Event()
    theirs: dict[str, Any] = {}

    async def body(manager: TokenManager) -> str:
        pending = asyncio.ensure_future(manager.access_token(account))
        await async_wait_until(lambda: world.fake.token_calls(), 10, "the refresh request")
        # tokens from elsewhere (the provider still accepts our refresh token)
        theirs.update(
            access_token="sk-ant-oat01-" + "T" * 40, refresh_token="sk-ant-ort01-" + "R" * 40
        )
        await asyncio.to_thread(world.write_tokens, theirs, world.now[0] + 7200)
        assert world.fake.gate is not None
        world.fake.gate.set()
        return await pending

    assert scenario(world, body) == theirs["access_token"]
    assert len(world.fake.issued) == 4  # our refresh succeeded at the provider...
    assert world.clear("access_token") == theirs["access_token"]  # ...but theirs stayed
    assert world.clear("refresh_token") == theirs["refresh_token"]


def test_invalid_grant_after_another_process_rotated_the_token_is_not_fatal(
    world: World,
) -> None:
    account = world.account()
    world.now[0] = NOW + LIFETIME + 1
    world.fake.gate = threading.Event()
    theirs: dict[str, Any] = {}

    async def body(manager: TokenManager) -> str:
        pending = asyncio.ensure_future(manager.access_token(account))
        await async_wait_until(lambda: world.fake.token_calls(), 10, "the refresh request")
        theirs.update(world.fake.issue())  # our refresh token is spent now: invalid_grant
        await asyncio.to_thread(world.write_tokens, theirs, world.now[0] + 7200)
        assert world.fake.gate is not None
        world.fake.gate.set()
        return await pending

    assert scenario(world, body) == theirs["access_token"]
    assert "needs_reauth" not in world.section()


def test_new_tokens_are_not_used_when_they_cannot_be_saved(world: World) -> None:
    account = world.account()
    world.now[0] = NOW + LIFETIME - 10  # inside the margin, still valid
    world.fake.gate = threading.Event()
    saved = world.store.path.read_text()

    async def body(manager: TokenManager) -> tuple[str, BaseException | None]:
        pending = asyncio.ensure_future(manager.access_token(account))
        await async_wait_until(lambda: world.fake.token_calls(), 10, "the refresh request")
        world.store.path.write_text(saved + "\nbroken: [\n")  # the save will fail
        assert world.fake.gate is not None
        world.fake.gate.set()
        token = await pending
        world.now[0] = NOW + LIFETIME + 1  # expired: now the failure shows
        error: BaseException | None = None
        try:
            await manager.access_token(account)
        except OAuthError as exc:
            error = exc
        return token, error

    token, error = scenario(world, body, retry_after_failure=0.0)
    assert token == world.fake.issued[0]  # the old, still valid token; not the unsaved one
    assert isinstance(error, TokenStoreError)
    assert world.fake.issued[2] not in world.store.path.read_text()


# --- failures ---------------------------------------------------------------------------------


def test_a_transient_failure_keeps_a_valid_token_and_records_the_error(world: World) -> None:
    account = world.account()
    world.fake.refuse[TOKEN_PATH] = (500, "application/json", b'{"error": "server_error"}')
    world.fake.refuse[FALLBACK_PATH] = world.fake.refuse[TOKEN_PATH]

    async def body(manager: TokenManager) -> tuple[str, str, OAuthError]:
        world.now[0] = NOW + LIFETIME - 10
        kept = await manager.access_token(account)
        world.now[0] += 5  # within retry_after_failure: no new attempt
        again = await manager.access_token(account)
        world.now[0] = NOW + LIFETIME + 60  # expired: the failure is the caller's now
        with pytest.raises(OAuthError) as caught:
            await manager.access_token(account)
        return kept, again, caught.value

    kept, again, error = scenario(world, body, retry_waits=())
    assert kept == again == world.fake.issued[0]
    assert [c.path for c in world.fake.token_calls()] == [TOKEN_PATH, FALLBACK_PATH] * 2
    assert error.status == 502 and not isinstance(error, ReauthorizationRequired)
    assert not error.rejects_credentials
    assert error.message == "the token endpoint answered 500 (server_error)"
    assert world.section()["last_error"] == "the token endpoint answered 500 (server_error)"
    assert "needs_reauth" not in world.section()


def test_passing_faults_are_retried_with_back_off_on_both_urls(world: World) -> None:
    world.fake.once[TOKEN_PATH] = [JSON_500, NO_ANSWER]
    world.fake.once[FALLBACK_PATH] = [(503, "text/plain", b"upstream connect error")]

    async def body(manager: TokenManager) -> str:
        return await manager.refresh_now(world.account_id)

    assert scenario(world, body, retry_waits=(0.01, 0.01)) == world.fake.issued[2]
    paths = [c.path for c in world.fake.token_calls()]
    assert paths == [TOKEN_PATH, FALLBACK_PATH, TOKEN_PATH, FALLBACK_PATH]
    assert "last_error" not in world.section()


def test_passing_faults_end_with_the_back_off_and_the_error_is_a_passing_one(
    world: World,
) -> None:
    world.fake.refuse[TOKEN_PATH] = JSON_500
    world.fake.refuse[FALLBACK_PATH] = HTML_403  # a refusal is not what is reported

    async def body(manager: TokenManager) -> OAuthError:
        with pytest.raises(OAuthError) as caught:
            await manager.refresh_now(world.account_id)
        return caught.value

    error = scenario(world, body, retry_waits=(0.01, 0.01))
    assert error.message == "the token endpoint answered 500 (api_error)"
    assert not error.rejects_credentials
    assert len(world.fake.token_calls()) == 6  # three rounds over the two URLs
    assert "needs_reauth" not in world.section()


def test_a_token_endpoint_that_does_not_answer_is_a_passing_fault(world: World) -> None:
    world.fake.gate = threading.Event()  # every token answer is held back
    quick = Timeouts(connect=5, tls=5, response_headers=0.3, stream_idle=5, total=5, pool=5)

    async def body(manager: TokenManager) -> OAuthError:
        with pytest.raises(OAuthError) as caught:
            await manager.refresh_now(world.account_id)
        return caught.value

    error = scenario(world, body, timeouts=quick, retry_waits=(0.01,))
    assert isinstance(error, EndpointRefused) and not error.rejects_credentials
    assert error.message == (
        "no answer from the token endpoint (127.0.0.1: ResponseHeadersTimeout; "
        "127.0.0.1: ResponseHeadersTimeout; 127.0.0.1: ResponseHeadersTimeout; "
        "127.0.0.1: ResponseHeadersTimeout)"
    )
    assert "needs_reauth" not in world.section()


@pytest.mark.parametrize(
    "primary",
    [HTML_403, (200, "text/html", b"<html>sign in</html>"), (403, "application/json", b"{}")],
    ids=["403-html", "200-html", "403-json"],
)
def test_the_fallback_url_is_used_when_the_primary_refuses(
    world: World, primary: tuple[int, str, bytes]
) -> None:
    world.fake.refuse[TOKEN_PATH] = primary

    async def body(manager: TokenManager) -> str:
        return await manager.refresh_now(world.account_id)

    assert scenario(world, body) == world.fake.issued[2]
    assert [c.path for c in world.fake.token_calls()] == [TOKEN_PATH, FALLBACK_PATH]


def test_the_fallback_url_is_used_when_the_primary_cannot_be_reached(world: World) -> None:
    point_oauth_at(
        world.store, world.fake, token_url=f"http://127.0.0.1:{free_port()}/v1/oauth/token"
    )

    async def body(manager: TokenManager) -> str:
        return await manager.refresh_now(world.account_id)

    assert scenario(world, body) == world.fake.issued[2]
    assert [c.path for c in world.fake.token_calls()] == [FALLBACK_PATH]


def test_an_oauth_error_answer_is_final_and_without_fallback_none_is_tried(
    world: World,
) -> None:
    world.fake.refuse[TOKEN_PATH] = (400, "application/json", b'{"error": "invalid_request"}')

    async def body(manager: TokenManager) -> OAuthError:
        with pytest.raises(OAuthError) as caught:
            await manager.refresh_now(world.account_id)
        return caught.value

    assert scenario(world, body).message == "the token endpoint answered 400 (invalid_request)"
    point_oauth_at(world.store, world.fake, token_fallback_url="")
    world.fake.refuse[TOKEN_PATH] = HTML_403
    assert scenario(world, body).message == "the token endpoint answered 403"
    assert [c.path for c in world.fake.token_calls()] == [TOKEN_PATH, TOKEN_PATH]


# --- in the background ----------------------------------------------------------------------


def test_background_refresh_runs_ahead_of_expiry_and_only_then(world: World) -> None:
    account = world.account()

    async def body(manager: TokenManager) -> None:
        world.now[0] = NOW + LIFETIME - MARGIN - 61  # beyond margin + horizon: nothing to do
        await manager.refresh_due([account], horizon=60)
        assert world.fake.token_calls() == []
        world.now[0] = NOW + LIFETIME - MARGIN - 59  # within margin + horizon
        await manager.refresh_due([account], horizon=60)
        assert len(world.fake.token_calls()) == 1
        # requests now get the refreshed token without waiting
        assert await manager.access_token(account) == world.fake.issued[2]

    scenario(world, body)
    assert len(world.fake.token_calls()) == 1


def test_background_errors_are_logged_and_the_loop_goes_on(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = world.account()
    world.now[0] = NOW + LIFETIME + 1
    world.fake.refuse[TOKEN_PATH] = (500, "text/plain", b"down")
    world.fake.refuse[FALLBACK_PATH] = (500, "text/plain", b"down")

    async def body(manager: TokenManager) -> None:
        task = asyncio.ensure_future(manager.run_background(lambda: [account], interval=0.01))
        await async_wait_until(
            lambda: len(world.fake.token_calls()) >= 4, 10, "two failed background passes"
        )
        assert not task.done()
        del world.fake.refuse[TOKEN_PATH]

        def stored_newest() -> bool:
            # The provider appends a token pair before its answer reaches us, so
            # wait for the pass to finish: the newest access token issued is the
            # one stored. (Under heavy load an answer can time out on our side
            # after it was issued, so it need not be the first after the outage.)
            issued = world.fake.issued
            return len(issued) > 2 and world.clear("access_token") == issued[-2]

        await async_wait_until(stored_newest, 10, "a successful pass, stored")
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    scenario(world, body, retry_after_failure=0.0, retry_waits=())
    assert "background token refresh failed" in caplog.text
    assert_no_secrets(caplog.text, world.fake)


def test_background_skips_accounts_that_cannot_refresh(world: World) -> None:
    world.fake.revoke()
    world.now[0] = NOW + LIFETIME + 1

    async def body(manager: TokenManager) -> None:
        await manager.refresh_due([world.account()], horizon=60)  # invalid_grant: logged
        await manager.refresh_due([world.account()], horizon=60)  # needs_reauth: skipped

    scenario(world, body)
    assert len(world.fake.token_calls()) == 1
    assert world.section()["needs_reauth"] is True
