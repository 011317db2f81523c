"""``TokenManager`` with a ``TokenShare`` (another host's view of the tokens):
newer tokens in the share are adopted without a token request, fresh tokens
are published sealed, a holder fenced out takes the winner's tokens, and the
file's copy failing to save does not fail the refresh."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from test_oauth_fakes import oauth_server
from test_oauth_manager import LIFETIME, NOW, World, scenario, world

from llm_gateway.crypto.sealing import load_secret_key
from llm_gateway.errors import ConfigError
from llm_gateway.oauth import records
from llm_gateway.oauth.manager import TokenManager
from llm_gateway.oauth.refresh_lock import Lease, SharedTokens

_ = (oauth_server, world)  # fixtures, imported for pytest


@dataclass
class MemoryShare:
    """A ``TokenShare`` in memory; ``overtaken``: a newer holder publishes first."""

    stored: SharedTokens | None = None
    fence: int = 0
    published: list[SharedTokens] = field(default_factory=list)
    overtaken: SharedTokens | None = None

    async def acquire(self, account_id: str, wait: float) -> Lease | None:
        self.fence += 1
        return Lease(account_id, self.fence)

    async def release(self, lease: Lease) -> None:
        return None

    async def read(self, account_id: str) -> SharedTokens | None:
        return self.stored

    async def publish(self, lease: Lease, tokens: SharedTokens) -> bool:
        if self.overtaken is not None:
            self.stored = self.overtaken
            return False
        self.published.append(tokens)
        self.stored = tokens
        return True


def sealed(world: World, access: str, refresh: str, expires_at: float, at: float) -> SharedTokens:
    key = load_secret_key(world.home, {}, create=False)
    return SharedTokens(
        access_token=records._seal(key, world.account_id, "access_token", access),
        refresh_token=records._seal(key, world.account_id, "refresh_token", refresh),
        expires_at=expires_at,
        last_refresh=at,
    )


def test_newer_tokens_from_another_host_are_used_without_a_refresh(world: World) -> None:
    answer = world.fake.issue()  # another host refreshed: the file's refresh token is spent
    share = MemoryShare(
        stored=sealed(
            world,
            answer["access_token"],
            answer["refresh_token"],
            NOW + 2 * LIFETIME,
            NOW + LIFETIME,
        )  # fmt: skip
    )
    world.now[0] = NOW + LIFETIME - 10  # the file's token is about to expire
    account = world.account()

    async def body(manager: TokenManager) -> str:
        return await manager.access_token(account)

    assert scenario(world, body, share=share) == answer["access_token"]
    assert world.refreshes() == []


def test_a_refresh_is_published_sealed_and_the_newer_one_taken_when_fenced_out(
    world: World,
) -> None:
    share = MemoryShare()
    world.now[0] = NOW + LIFETIME + 1
    account = world.account()

    async def body(manager: TokenManager) -> str:
        return await manager.access_token(account)

    token = scenario(world, body, share=share)
    assert len(world.refreshes()) == 1
    (published,) = share.published
    key = load_secret_key(world.home, {}, create=False)
    assert (
        records.unseal_field(key, world.account_id, "access_token", published.access_token) == token
    )
    assert token not in (published.access_token, published.refresh_token)
    assert world.clear("access_token") == token  # the file has them too

    # a holder fenced out: a newer lease published other tokens first
    winner = {"access_token": "sk-ant-oat01-winner", "refresh_token": "sk-ant-ort01-winner"}
    share.overtaken = sealed(
        world,
        winner["access_token"],
        winner["refresh_token"],
        NOW + 30 * LIFETIME,
        NOW + 20 * LIFETIME,
    )
    share.stored = None
    world.now[0] = NOW + 20 * LIFETIME  # the first refresh's token expired too
    account = world.account()
    assert scenario(world, body, share=share) == winner["access_token"]


def test_a_file_that_cannot_be_written_does_not_fail_a_shared_refresh(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = MemoryShare()
    world.now[0] = NOW + LIFETIME + 1
    account = world.account()
    before = world.clear("access_token")

    def read_only(mutate: Any) -> Any:
        raise ConfigError(f"{world.store.path}: read-only file system")

    monkeypatch.setattr(world.store, "update", read_only)

    async def body(manager: TokenManager) -> str:
        return await manager.access_token(account)

    token = scenario(world, body, share=share)
    assert len(share.published) == 1 and token != before
    monkeypatch.undo()
    assert world.clear("access_token") == before  # the file kept its old copy
