"""The redis backend's pieces against a real Redis: the buckets' script (the same
answers as the in-process limiter), the link's fall-back and recovery, the
OAuth leases with their fence, and the account health marks."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, run
from redis_server import RedisServer, redis_server, redis_url, server_binary

from llm_gateway.config.schema import StateConfig
from llm_gateway.errors import StateUnavailable
from llm_gateway.oauth.errors import OAuthError
from llm_gateway.oauth.refresh_lock import SharedTokens
from llm_gateway.routing.ratelimit import KeyLimits, RateLimiter
from llm_gateway.routing.state import HealthMark, MarkReason
from llm_gateway.state.local_buckets import LocalBuckets
from llm_gateway.state.redis_buckets import RedisBuckets, share
from llm_gateway.state.redis_health import READ_AGAIN, RedisHealth
from llm_gateway.state.redis_link import LinkState, RedisLink
from llm_gateway.state.redis_tokens import RedisTokens

_ = (redis_server, redis_url)  # fixtures, imported for pytest


def settings(url: str, **changes: Any) -> StateConfig:
    prefix = f"t{os.urandom(4).hex()}:"  # a shared server: every test its own keys
    fields: dict[str, Any] = {"backend": "redis", "url": url, "key_prefix": prefix}
    fields.update(changes)
    return StateConfig(**fields)


def numbers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The headers without the reset durations (the two clocks differ by microseconds)."""
    return {name: value for name, value in headers if not name.startswith("x-ratelimit-reset")}


def test_the_script_admits_and_denies_as_the_in_process_limiter(redis_url: str) -> None:
    async def scenario() -> None:
        link = RedisLink(settings(redis_url))
        buckets = RedisBuckets(link, LocalBuckets(RateLimiter()))
        local = RateLimiter()
        limits = KeyLimits(rpm=5, tpm=1000)
        try:
            for _ in range(8):
                got = await buckets.check_request("k", limits, time.monotonic())
                want = local.check_request("k", limits, time.monotonic())
                assert got.allowed == want.allowed
                assert numbers(got.headers) == numbers(want.headers)
            # a response's tokens go negative and deny the key, unlimited rpm or not
            await buckets.record_tokens("k", limits, 5000, time.monotonic())
            denied = await buckets.check_request("k", KeyLimits(tpm=1000), time.monotonic())
            assert not denied.allowed
            assert dict(denied.headers)["x-ratelimit-remaining-tokens"] == "0"
            assert 60 <= int(dict(denied.headers)["retry-after"]) <= 61
            # the hash expires by itself once both buckets would be full again
            ttl = await link.client.pttl(f"{link.settings.key_prefix}rl:k")
            assert 0 < ttl <= 121_000
            assert link.up
        finally:
            await link.aclose()

    run(scenario())


def test_a_key_without_limits_leaves_nothing_in_redis(redis_url: str) -> None:
    async def scenario() -> None:
        link = RedisLink(settings(redis_url))
        buckets = RedisBuckets(link, LocalBuckets(RateLimiter()))
        try:
            decision = await buckets.check_request("free", KeyLimits(), time.monotonic())
            assert decision.allowed and decision.headers == []
            assert await link.client.keys(f"{link.settings.key_prefix}*") == []
        finally:
            await link.aclose()

    run(scenario())


class _DeadClient:
    """A client whose every command fails as a refused connection; it counts them."""

    def __init__(self) -> None:
        self.calls = 0

    def register_script(self, text: str) -> Any:
        async def script(**_: Any) -> Any:
            self.calls += 1
            raise ConnectionRefusedError(111, "Connection refused")

        return script

    async def ping(self) -> bool:
        self.calls += 1
        raise ConnectionRefusedError(111, "Connection refused")

    async def aclose(self) -> None:
        return None


def test_a_dead_redis_is_asked_once_then_each_instance_enforces_its_share() -> None:
    async def scenario() -> None:
        client = _DeadClient()
        link = RedisLink(
            settings("redis://127.0.0.1:1/0", retry_interval=30.0, instances=3), client=client
        )
        buckets = RedisBuckets(link, LocalBuckets(RateLimiter()), instances=3)
        try:
            results = [
                (await buckets.check_request("k", KeyLimits(rpm=30), time.monotonic())).allowed
                for _ in range(20)
            ]
            assert results == [True] * 10 + [False] * 10  # 30 / 3 instances
            assert client.calls == 1  # later requests never touched the network
            assert link.state is LinkState.DOWN
            report = link.report()
            assert report["reachable"] is False
            assert "share" in str(report["degraded"])
        finally:
            await link.aclose()

    run(scenario())


def test_shares_are_whole_and_never_zero() -> None:
    assert share(KeyLimits(rpm=30, tpm=1000), 3) == KeyLimits(rpm=10, tpm=333)
    assert share(KeyLimits(rpm=2), 3) == KeyLimits(rpm=1)
    assert share(KeyLimits(rpm=7), 1) == KeyLimits(rpm=7)


def test_an_unanswering_redis_costs_one_bounded_wait() -> None:
    """A server that accepts and never answers: the command gives up after its timeouts."""

    async def scenario() -> None:
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        link = RedisLink(
            settings(f"redis://127.0.0.1:{port}/0", connect_timeout=0.2, command_timeout=0.2)
        )
        buckets = RedisBuckets(link, LocalBuckets(RateLimiter()))
        try:
            started = time.monotonic()
            decision = await buckets.check_request("k", KeyLimits(rpm=5), time.monotonic())
            assert decision.allowed  # served from the fallback
            assert time.monotonic() - started < 5.0  # bounded (0.4 s), generous on a busy host
            assert not link.up
            with pytest.raises(StateUnavailable):
                await link.call(lambda client: client.ping())
        finally:
            await link.aclose()
            silent.close()

    run(scenario())


def test_the_link_comes_back_when_redis_returns(redis_server: RedisServer, caplog: Any) -> None:
    async def scenario() -> None:
        link = RedisLink(settings(redis_server.url, retry_interval=0.1, retry_max=0.2))
        buckets = RedisBuckets(link, LocalBuckets(RateLimiter()))
        key = f"{link.settings.key_prefix}rl:k"
        try:
            assert (await buckets.check_request("k", KeyLimits(rpm=5), 0.0)).allowed
            redis_server.kill()
            for _ in range(3):
                assert (await buckets.check_request("k", KeyLimits(rpm=5), 0.0)).allowed
            assert not link.up
            redis_server.start()
            deadline = time.monotonic() + 20
            while not link.up:
                assert time.monotonic() < deadline, "the link did not come back"
                await asyncio.sleep(0.05)
            decision = await buckets.check_request("k", KeyLimits(rpm=5), 0.0)
            assert decision.allowed
            assert await link.client.hget(key, "rc") == b"5"  # Redis holds the bucket again
        finally:
            await link.aclose()

    caplog.set_level("INFO", logger="llm_gateway.state")
    run(scenario(), timeout=60)
    messages = [r.getMessage() for r in caplog.records if r.name == "llm_gateway.state"]
    assert messages == [
        "shared state unreachable: serving with this instance's own state until it returns",
        "shared state reachable again",
    ]  # once each, not per request


def test_the_password_stays_out_of_the_report() -> None:
    link = RedisLink(settings("redis://gateway:s3cret-pw@127.0.0.1:1/0"), client=_DeadClient())
    assert "s3cret" not in repr(link.report())
    assert "s3cret" not in repr(link.settings)


def test_an_acl_user_and_password_are_sent(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        admin = RedisLink(settings(redis_server.url))
        await admin.client.execute_command(
            "ACL", "SETUSER", "gw", "on", ">pw-for-gw", "~*", "+@all"
        )
        await admin.aclose()
        good = RedisLink(settings(redis_server.url, username="gw", password="pw-for-gw"))
        bad = RedisLink(settings(f"redis://gw:wrong@127.0.0.1:{redis_server.port}/0"))
        try:
            assert await good.check()
            assert not await bad.check()
            assert "wrong" not in repr(bad.report())
        finally:
            await good.aclose()
            await bad.aclose()

    run(scenario())


# --- OAuth leases -------------------------------------------------------------------


def test_a_holder_whose_lease_lapsed_cannot_overwrite_newer_tokens(redis_url: str) -> None:
    async def scenario() -> None:
        link = RedisLink(settings(redis_url))
        slow = RedisTokens(link, lease=0.2, poll=0.01)
        fast = RedisTokens(link, lease=30.0, poll=0.01)
        try:
            first = await slow.acquire("acct", wait=1.0)
            assert first is not None
            second = await fast.acquire("acct", wait=5.0)  # after the first lease lapsed
            assert second is not None and second.fence > first.fence
            newer = SharedTokens("sealed-new", "sealed-refresh-new", 2e9, 1e9 + 2)
            assert await fast.publish(second, newer)
            older = SharedTokens("sealed-old", "sealed-refresh-old", 1.9e9, 1e9 + 1)
            assert not await slow.publish(first, older)
            assert await fast.read("acct") == newer
            await slow.release(first)  # not its lease any more: nothing happens
            with pytest.raises(OAuthError, match="another gateway instance"):
                await slow.acquire("acct", wait=0.1)
            await fast.release(second)
            assert await slow.acquire("acct", wait=0.1) is not None
        finally:
            await link.aclose()

    run(scenario())


def test_without_redis_the_lease_is_none_and_publishing_is_not_refused() -> None:
    async def scenario() -> None:
        link = RedisLink(settings(f"redis://127.0.0.1:{free_port()}/0"))
        tokens = RedisTokens(link)
        try:
            assert await tokens.acquire("acct", wait=1.0) is None
            assert await tokens.read("acct") is None
        finally:
            await link.aclose()

    run(scenario())


def _tls_files(directory: Path) -> dict[str, Path]:
    """A CA, and a certificate it signed for 127.0.0.1 (made with the openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make test certificates")
    files = {name: directory / name for name in ("ca.key", "ca.pem", "server.key", "server.pem")}
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=llm-gateway test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf"],
    ):  # fmt: skip
        subprocess.run(["openssl", *command], cwd=directory, check=True, capture_output=True)
    return files


def test_a_tls_redis_is_reached_with_rediss_and_its_ca(tmp_path: Path) -> None:
    binary = server_binary()
    if binary is None:
        pytest.skip("no redis-server on this machine (apt install redis-server)")
    files = _tls_files(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(files["server.pem"]), "--tls-key-file", str(files["server.key"]),
         "--tls-ca-cert-file", str(files["ca.pem"]), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"rediss://127.0.0.1:{port}/0"

        async def scenario() -> tuple[bool, bool, bool]:
            trusted = RedisLink(settings(url, ca_file=str(files["ca.pem"]), connect_timeout=2.0))
            untrusted = RedisLink(settings(url, connect_timeout=2.0))
            plain = RedisLink(settings(f"redis://127.0.0.1:{port}/0", connect_timeout=2.0))
            try:
                deadline = time.monotonic() + 30
                while not await trusted.check():  # until the server listens
                    assert time.monotonic() < deadline, "the TLS server did not answer"
                    await asyncio.sleep(0.1)
                buckets = RedisBuckets(trusted, LocalBuckets(RateLimiter()))
                decision = await buckets.check_request("k", KeyLimits(rpm=5), 0.0)
                stored = await trusted.client.hget(f"{trusted.settings.key_prefix}rl:k", "rc")
                return (
                    decision.allowed and stored == b"5",
                    await untrusted.check(),
                    await plain.check(),
                )
            finally:
                for link in (trusted, untrusted, plain):
                    await link.aclose()

        served, without_ca, without_tls = run(scenario(), timeout=60)
        assert served
        assert not without_ca  # the server's certificate is checked
        assert not without_tls
    finally:
        process.terminate()
        process.wait(10)


def test_a_responses_tokens_reach_the_other_instances_within_the_charge_delay(
    redis_url: str,
) -> None:
    async def scenario() -> None:
        config = settings(redis_url)
        here, there = RedisLink(config), RedisLink(config)
        mine = RedisBuckets(here, LocalBuckets(RateLimiter()))
        theirs = RedisBuckets(there, LocalBuckets(RateLimiter()))
        limits = KeyLimits(tpm=1000)
        try:
            assert (await theirs.check_request("k", limits, 0.0)).allowed
            await mine.record_tokens("k", limits, 5000, 0.0)  # no round trip of its own
            deadline = time.monotonic() + 20
            while (await theirs.check_request("k", limits, 0.0)).allowed:
                assert time.monotonic() < deadline, "the tokens were never charged"
                await asyncio.sleep(0.05)
            # charged with the next check on this instance, at once
            await mine.record_tokens("j", limits, 5000, 0.0)
            assert not (await mine.check_request("j", limits, 0.0)).allowed
            # and what waits at shutdown is charged then
            await mine.record_tokens("m", limits, 5000, 0.0)
            await mine.aclose()
            assert not (await theirs.check_request("m", limits, 0.0)).allowed
        finally:
            await here.aclose()
            await there.aclose()

    run(scenario(), timeout=60)


# --- account health marks -------------------------------------------------------------


@dataclass
class MemoryHealth:
    """A ``SharedHealth`` in memory (the ``--workers`` table's stand-in)."""

    marks: dict[tuple[str, MarkReason], float] = field(default_factory=dict)

    async def read(self, account_ids: Any, now: float) -> list[HealthMark]:
        return [
            HealthMark(a, r, u) for (a, r), u in self.marks.items() if a in account_ids and u > now
        ]

    async def publish(self, marks: Any, now: float) -> None:
        for m in marks:
            if m.until == 0:
                self.marks.pop((m.account_id, m.reason), None)
            else:
                self.marks[(m.account_id, m.reason)] = max(
                    m.until, self.marks.get((m.account_id, m.reason), 0.0)
                )


def test_a_mark_published_on_one_instance_is_read_on_another_and_expires(redis_url: str) -> None:
    async def scenario() -> None:
        config = settings(redis_url)
        here, there = RedisLink(config), RedisLink(config)
        clock = [0.0]
        mine, theirs = RedisHealth(here), RedisHealth(there, clock=lambda: clock[0])
        now = time.time()
        try:
            assert await theirs.read(["a", "b"], now) == []
            await mine.publish([HealthMark("a", MarkReason.CIRCUIT, now + 30)], now)
            # what "theirs" read stands for READ_AGAIN seconds, then Redis is asked
            assert await theirs.read(["a", "b"], now) == []
            clock[0] += READ_AGAIN
            assert await theirs.read(["a", "b"], now) == [
                HealthMark("a", MarkReason.CIRCUIT, now + 30)
            ]
            # the later time wins; a second reason is kept beside it
            await mine.publish(
                [HealthMark("a", MarkReason.CIRCUIT, now + 10),
                 HealthMark("a", MarkReason.COOLDOWN, now + 60)],
                now,
            )  # fmt: skip
            clock[0] += READ_AGAIN
            got = sorted(await theirs.read(["a"], now), key=lambda m: m.reason.value)
            assert got == [
                HealthMark("a", MarkReason.CIRCUIT, now + 30),
                HealthMark("a", MarkReason.COOLDOWN, now + 60),
            ]
            key = f"{config.key_prefix}health:a"
            assert 55_000 < await here.client.pttl(key) <= 60_000  # expires with its last mark
            # a recovery removes the reason; a mark past its time is not returned
            await mine.publish([HealthMark("a", MarkReason.COOLDOWN, 0.0)], now)
            clock[0] += READ_AGAIN
            assert await theirs.read(["a"], now) == [HealthMark("a", MarkReason.CIRCUIT, now + 30)]
            assert await theirs.read(["a"], now + 31) == []
            await mine.publish([HealthMark("a", MarkReason.CIRCUIT, 0.0)], now)
            assert await here.client.exists(key) == 0  # nothing left behind
        finally:
            await here.aclose()
            await there.aclose()

    run(scenario())


def test_without_redis_health_marks_go_to_this_hosts_table() -> None:
    async def scenario() -> None:
        link = RedisLink(settings("redis://127.0.0.1:1/0"), client=_DeadClient())
        local = MemoryHealth()
        health = RedisHealth(link, local)
        now = time.time()
        try:
            await health.publish([HealthMark("a", MarkReason.AUTH, now + 30)], now)
            assert await health.read(["a"], now) == [HealthMark("a", MarkReason.AUTH, now + 30)]
            assert not link.up
            assert await RedisHealth(link).read(["a"], now) == []  # no table: own view only
        finally:
            await link.aclose()

    run(scenario())
