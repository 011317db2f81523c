"""Three gateway instances, as on three hosts (each its own home holding a copy
of one configuration and one secret key), sharing one real Redis: one rate
limit for all of them, one OAuth refresh for all of them, and Redis killed and
started again in the middle of a run."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, get_health, run_cli, server_command, subprocess_env, wait_until
from fake_upstream import Answer, FakeUpstream, answering, clear_proxy_environment, json_reply
from redis_server import RedisServer, redis_server
from test_e2e_oauth import access_token_sent, authorised_account, message, set_expiry
from test_oauth_fakes import FakeOAuthServer, oauth_server

from llm_gateway.config.store import ConfigStore

_ = (oauth_server, redis_server)  # fixtures, imported for pytest

INSTANCES = 3


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> ConfigStore:
    clear_proxy_environment(monkeypatch)
    return ConfigStore(Path(os.environ["LLM_GATEWAY_HOME"]) / "config.yaml")


def use_redis(store: ConfigStore, url: str) -> None:
    """The state section every instance gets: Redis, three instances, quick retries, and
    timeouts no busy test machine reaches (a dead Redis fails at once all the same)."""
    state = {"backend": "redis", "url": url, "key_prefix": f"t{os.urandom(4).hex()}:",
             "instances": INSTANCES, "retry_interval": 0.2, "retry_max": 0.5,
             "connect_timeout": 5, "command_timeout": 5}  # fmt: skip
    store.update(lambda document: document.__setitem__("state", state))


def host_homes(home: Path, tmp_path: Path) -> list[Path]:
    """The first home and two copies of its configuration and secret key (other hosts)."""
    homes = [home]
    for index in range(1, INSTANCES):
        other = tmp_path / f"host-{index}"
        other.mkdir(mode=0o700)
        for name in ("config.yaml", "secret.key"):
            shutil.copy2(home / name, other / name)
        homes.append(other)
    return homes


@contextmanager
def instances(homes: list[Path]) -> Iterator[list[int]]:
    """``server start`` in each home, each on its own port; stopped by PID."""
    ports = [free_port() for _ in homes]
    processes = [
        subprocess.Popen(
            server_command(port),
            env=subprocess_env(LLM_GATEWAY_HOME=str(home), LOG_LEVEL="warning"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for home, port in zip(homes, ports, strict=True)
    ]
    try:
        for port in ports:
            wait_until(lambda port=port: get_health(port), 60, f"the instance on {port}")
        yield ports
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            assert process.wait(30) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def chat(port: int, key: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                     headers={"authorization": f"Bearer {key}", "connection": "close",
                              "content-type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def spread(ports: list[int], key: str, count: int) -> list[tuple[int, int]]:
    """``count`` requests, in turn on each instance, 8 at a time: (port, status) pairs."""
    targets = [ports[i % len(ports)] for i in range(count)]
    with ThreadPoolExecutor(8) as pool:
        return list(zip(targets, pool.map(lambda port: chat(port, key), targets), strict=True))


def add_key(rpm: int) -> str:
    name = f"k-{os.urandom(4).hex()}"
    key: str = run_cli("apikey", "add", "--name", name, "--rpm", str(rpm), "--json").json()["key"]
    return key


def openai_account(up: FakeUpstream) -> None:
    added = run_cli("upstream", "add", "--type", "api-key", "--provider", "openai",
                    "--name", "only", "--key", "sk-only-" + "x" * 20,
                    "--base-url", up.base_url + "/v1", "--models", "gpt-*", "--json")  # fmt: skip
    assert added.code == 0, added.output


def test_a_key_limited_to_30_rpm_gets_30_of_60_over_three_instances(
    home: Path, store: ConfigStore, tmp_path: Path, redis_server: RedisServer
) -> None:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="ok")))
        openai_account(up)
        key = add_key(30)
        use_redis(store, redis_server.url)
        with instances(host_homes(home, tmp_path)) as ports:
            replies = spread(ports, key, 60)
            assert sorted(status for _, status in replies) == [200] * 30 + [429] * 30
            assert {port for port, status in replies if status == 200} == set(ports)
            assert len(up.requests) == 30
            for port in ports:
                health = get_health(port)
                assert health is not None and health["state"]["reachable"] is True


def test_twenty_requests_on_three_instances_with_an_expired_token_refresh_once(
    home: Path,
    store: ConfigStore,
    tmp_path: Path,
    oauth_server: FakeOAuthServer,
    redis_server: RedisServer,
) -> None:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="from the subscription")))
        account_id = authorised_account(store, oauth_server, up.base_url)
        set_expiry(store, account_id, 1.0)  # long expired, in every host's copy
        key: str = run_cli("apikey", "add", "--name", "k", "--json").json()["key"]
        use_redis(store, redis_server.url)
        with instances(host_homes(home, tmp_path)) as ports:
            oauth_server.gate = threading.Event()  # hold the refresh until all have asked

            def send(index: int) -> int:
                conn = http.client.HTTPConnection("127.0.0.1", ports[index % 3], timeout=120)
                try:
                    conn.request("POST", "/v1/messages",
                                 body=json.dumps(message(f"n{index}")).encode(),
                                 headers={"x-api-key": key, "anthropic-version": "2023-06-01",
                                          "content-type": "application/json",
                                          "connection": "close"})  # fmt: skip
                    response = conn.getresponse()
                    response.read()
                    return response.status
                finally:
                    conn.close()

            with ThreadPoolExecutor(20) as pool:
                futures = [pool.submit(send, i) for i in range(20)]
                wait_until(lambda: oauth_server.token_calls("refresh_token"), 60, "a refresh")
                time.sleep(0.5)  # let the other requests reach the instances
                oauth_server.gate.set()
                statuses = [f.result() for f in futures]
            assert statuses == [200] * 20
            assert len(oauth_server.token_calls("refresh_token")) == 1
            tokens = {access_token_sent(up, i) for i in range(20)}
            assert len(tokens) == 1  # every instance used the one new token
            assert tokens <= set(oauth_server.issued)
            # Redis holds the tokens sealed, never in clear
            clear = tokens | {t for t in oauth_server.issued if t.startswith("sk-ant-ort01-")}
            stored = redis_dump(redis_server.port)
            assert "access_token" in stored
            assert not [token for token in clear if token in stored]


def redis_dump(port: int) -> str:
    """Every key and value in the Redis on ``port``, as text."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        parts: list[str] = []
        for name in client.keys("*"):
            kind = client.type(name)
            value: Any = client.hgetall(name) if kind == b"hash" else client.get(name)
            parts.append(f"{name!r} {value!r}")
        return "\n".join(parts)
    finally:
        client.close()


def test_redis_killed_mid_run_each_instance_enforces_its_share_then_recovers(
    home: Path, store: ConfigStore, tmp_path: Path, redis_server: RedisServer
) -> None:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="ok")))
        openai_account(up)
        roomy, shared, limited = add_key(600), add_key(600), add_key(30)
        use_redis(store, redis_server.url)
        with instances(host_homes(home, tmp_path)) as ports:
            assert [status for _, status in spread(ports, roomy, 30)] == [200] * 30
            redis_server.kill()
            # no client error: every request is served from the instance's own share
            assert [status for _, status in spread(ports, roomy, 30)] == [200] * 30
            for port in ports:
                health = get_health(port)
                assert health is not None and health["status"] == "ok"
                assert health["state"]["reachable"] is False
                assert "share" in health["state"]["degraded"]
            # the documented degradation: 30 rpm over 3 instances is 10 on each
            replies = spread(ports, limited, 60)
            assert sorted(status for _, status in replies) == [200] * 30 + [429] * 30
            assert sorted(port for port, status in replies if status == 200) == sorted(ports * 10)

            redis_server.start()  # the same port, empty
            wait_until(
                lambda: all((get_health(p) or {}).get("state", {}).get("reachable") for p in ports),
                30,
                "every instance to find Redis again",
            )
            assert [status for _, status in spread(ports, shared, 30)] == [200] * 30
            stored = redis_dump(redis_server.port)
            assert stored.count(":rl:") == 1  # the key's buckets are in Redis again


def test_oauth_refresh_on_one_host_serves_the_others_through_redis(
    home: Path,
    store: ConfigStore,
    tmp_path: Path,
    oauth_server: FakeOAuthServer,
    redis_server: RedisServer,
) -> None:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="from the subscription")))
        account_id = authorised_account(store, oauth_server, up.base_url)
        key: str = run_cli("apikey", "add", "--name", "k", "--json").json()["key"]
        use_redis(store, redis_server.url)
        other = host_homes(home, tmp_path)[1]  # a copy made before the refresh
        refreshed = run_cli("oauth", "refresh", account_id)
        assert refreshed.code == 0, refreshed.output
        assert len(oauth_server.token_calls("refresh_token")) == 1
        new_access = [t for t in oauth_server.issued if t.startswith("sk-ant-oat01-")][-1]
        other_store = ConfigStore(other / "config.yaml")
        set_expiry(other_store, account_id, 1.0)  # the other host's copy has expired
        with instances([other]) as (port,):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/v1/messages", body=json.dumps(message()).encode(),
                         headers={"x-api-key": key, "anthropic-version": "2023-06-01",
                                  "content-type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            response.read()
            conn.close()
        assert response.status == 200
        # the other host took the new tokens from Redis: no second refresh, which would
        # have spent the refresh token the first one rotated away
        assert len(oauth_server.token_calls("refresh_token")) == 1
        assert access_token_sent(up) == new_access


def add_account(name: str, base_url: str, priority: int) -> None:
    added = run_cli("upstream", "add", "--type", "api-key", "--provider", "openai",
                    "--name", name, "--key", f"sk-{name}-" + "x" * 20,
                    "--base-url", base_url + "/v1", "--models", "gpt-*",
                    "--priority", str(priority), "--json")  # fmt: skip
    assert added.code == 0, added.output


_FAILURES = {
    "server_error": json_reply({"error": {"message": "boom"}}, status=500),
    "rate_limited": json_reply(
        {"error": {"message": "slow down", "type": "rate_limit_error"}},
        status=429,
        headers=[("retry-after", "8")],
    ),
}


@pytest.mark.parametrize("failure", sorted(_FAILURES))
def test_an_account_failing_on_one_instance_is_skipped_by_the_other_two_within_a_second(
    home: Path, store: ConfigStore, tmp_path: Path, redis_server: RedisServer, failure: str
) -> None:
    with FakeUpstream() as flaky, FakeUpstream() as spare:
        flaky.respond(answering(Answer(text="preferred")))
        spare.respond(answering(Answer(text="spare")))
        add_account("preferred", flaky.base_url, 0)
        add_account("spare", spare.base_url, 1)
        store.update(
            lambda d: d.setdefault("routing", {}).update(failure_threshold=1, open_base=8.0)
        )
        key = add_key(10_000)  # limited: the bucket check goes to Redis as well
        use_redis(store, redis_server.url)
        with instances(host_homes(home, tmp_path)) as ports:
            assert [chat(port, key) for port in ports] == [200] * 3
            assert len(flaky.requests) == 3  # every instance uses the preferred account
            flaky.reset()
            flaky.respond(_FAILURES[failure])
            assert chat(ports[0], key) == 200  # the spare answered
            assert len(flaky.requests) == 1
            time.sleep(1.0)  # the promised bound
            statuses = [chat(port, key) for port in ports[1:] for _ in range(5)]
            assert statuses == [200] * 10
            assert len(flaky.requests) == 1, "the other instances tried the failing account"
            assert len(spare.requests) == 11
            flaky.respond(answering(Answer(text="preferred again")))

            def all_use_it_again() -> bool:
                before = len(flaky.requests)
                return all(chat(port, key) == 200 for port in ports) and (
                    len(flaky.requests) - before == len(ports)
                )

            wait_until(all_use_it_again, 60, "every instance to use the account again")
