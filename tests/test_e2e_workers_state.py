"""State the workers of ``server start --workers 2`` share: one per-key rate
limit for all of them (also after a worker is killed and started again), and
one OAuth refresh however many requests on however many workers need it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import test_e2e_usage as usage
from conftest import free_port, get_health, run_cli, server_command, subprocess_env, wait_until
from fake_upstream import (
    Answer,
    Drop,
    FakeUpstream,
    answering,
    clear_proxy_environment,
    json_reply,
)
from test_e2e_oauth import access_token_sent, authorised_account, message, set_expiry
from test_oauth_fakes import FakeOAuthServer, oauth_server

from llm_gateway.config.store import ConfigStore

_ = oauth_server  # the fixture, imported for pytest


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> ConfigStore:
    clear_proxy_environment(monkeypatch)
    return ConfigStore(Path(os.environ["LLM_GATEWAY_HOME"]) / "config.yaml")


def worker_pids(port: int, seen: set[int]) -> set[int]:
    """Ask /health on fresh connections until two worker pids answered."""
    for _ in range(20):
        answer = get_health(port)
        if answer is not None:
            seen.add(int(answer["pid"]))
    return seen


@contextmanager
def two_workers(home: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, set[int]]]:
    port = free_port()
    process = subprocess.Popen(
        server_command(port, "--workers", "2"),
        env=subprocess_env(LLM_GATEWAY_HOME=str(home), LOG_LEVEL="warning"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        seen: set[int] = set()
        wait_until(lambda: len(worker_pids(port, seen)) == 2, 60, "two workers to answer")
        yield process, port, seen
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def chat(port: int, key: str) -> tuple[int, str]:
    """One request on its own connection: the status and the answering worker's id prefix."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                     headers={"authorization": f"Bearer {key}", "connection": "close",
                              "content-type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        response.read()
        return response.status, (response.getheader("x-request-id") or "")[:16]
    finally:
        conn.close()


def models_status(port: int, key: str) -> int:
    """The status of an unlimited request (the model list) on its own connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/v1/models",
                     headers={"authorization": f"Bearer {key}", "connection": "close"})  # fmt: skip
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def burst(port: int, key: str, count: int) -> list[tuple[int, str]]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: chat(port, key), range(count)))


def add_key(rpm: int) -> str:
    name = f"k-{os.urandom(4).hex()}"
    key: str = run_cli("apikey", "add", "--name", name, "--rpm", str(rpm), "--json").json()["key"]
    return key


def test_a_key_limited_to_30_rpm_gets_30_of_60_across_two_workers_also_after_a_kill(
    home: Path, store: ConfigStore
) -> None:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="ok")))
        added = run_cli("upstream", "add", "--type", "api-key", "--provider", "openai",
                        "--name", "only", "--key", "sk-only-" + "x" * 20,
                        "--base-url", up.base_url + "/v1", "--models", "gpt-*", "--json")  # fmt: skip
        assert added.code == 0, added.output
        first_key = add_key(30)
        with two_workers(home) as (_, port, pids):
            replies = burst(port, first_key, 60)
            assert sorted(status for status, _ in replies) == [200] * 30 + [429] * 30
            assert len({prefix for _, prefix in replies}) == 2  # both workers answered
            assert len(up.requests) == 30

            victim = next(iter(pids))
            os.kill(victim, signal.SIGKILL)
            seen: set[int] = set()
            wait_until(
                lambda: len(worker_pids(port, seen) - {victim}) == 2,
                60,
                "the killed worker to be replaced",
            )
            # the spent key stays spent: the replacement did not start it afresh
            # (it refills one request every 2 s, so only a few may have come back)
            again = burst(port, first_key, 30)
            assert sum(status == 200 for status, _ in again) < 15
            # and a new key is limited exactly, by the new worker and the old one
            second_key = add_key(30)
            wait_until(
                lambda: all(models_status(port, second_key) == 200 for _ in range(20)),
                30,
                "the new key on both workers",
            )
            replies = burst(port, second_key, 60)
            assert sorted(status for status, _ in replies) == [200] * 30 + [429] * 30
            assert len({prefix for _, prefix in replies}) == 2


def test_twenty_requests_on_two_workers_with_an_expired_token_refresh_once(
    home: Path, store: ConfigStore, oauth_server: FakeOAuthServer
) -> None:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="from the subscription")))
        account_id = authorised_account(store, oauth_server, up.base_url)
        set_expiry(store, account_id, 1.0)  # long expired
        key: str = run_cli("apikey", "add", "--name", "k", "--json").json()["key"]
        with two_workers(home) as (_, port, _pids):
            oauth_server.gate = threading.Event()  # hold the refresh until all have asked

            def send(index: int) -> tuple[int, str]:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    conn.request("POST", "/v1/messages",
                                 body=json.dumps(message(f"n{index}")).encode(),
                                 headers={"x-api-key": key, "anthropic-version": "2023-06-01",
                                          "content-type": "application/json",
                                          "connection": "close"})  # fmt: skip
                    response = conn.getresponse()
                    response.read()
                    return response.status, (response.getheader("x-request-id") or "")[:16]
                finally:
                    conn.close()

            with ThreadPoolExecutor(20) as pool:
                futures = [pool.submit(send, i) for i in range(20)]
                wait_until(lambda: oauth_server.token_calls("refresh_token"), 30, "a refresh")
                time.sleep(0.5)  # let the other requests reach the gateway
                oauth_server.gate.set()
                results = [f.result() for f in futures]
        assert [status for status, _ in results] == [200] * 20
        assert len({prefix for _, prefix in results}) == 2  # both workers needed the token
        assert len(oauth_server.token_calls("refresh_token")) == 1
        assert len({access_token_sent(up, i) for i in range(20)}) == 1


def add_account(name: str, base_url: str, priority: int) -> None:
    added = run_cli("upstream", "add", "--type", "api-key", "--provider", "openai",
                    "--name", name, "--key", f"sk-{name}-" + "x" * 20,
                    "--base-url", base_url + "/v1", "--models", "gpt-*",
                    "--priority", str(priority), "--json")  # fmt: skip
    assert added.code == 0, added.output


def served_by_each(port: int, key: str, limit: int = 60) -> dict[str, list[int]]:
    """Requests on fresh connections until both workers answered: statuses per worker."""
    by_worker: dict[str, list[int]] = {}
    for _ in range(limit):
        status, worker = chat(port, key)
        by_worker.setdefault(worker, []).append(status)
        if len(by_worker) == 2:
            break
    assert len(by_worker) == 2, by_worker
    return by_worker


_FAILURES = {
    "server_error": json_reply({"error": {"message": "boom"}}, status=500),
    "rate_limited": json_reply(
        {"error": {"message": "slow down", "type": "rate_limit_error"}},
        status=429,
        headers=[("retry-after", "8")],
    ),
    "connection_dropped": Drop(reset=True),
}


@pytest.mark.parametrize("failure", sorted(_FAILURES))
def test_an_account_one_worker_found_failing_or_rate_limited_is_skipped_by_the_other(
    home: Path, store: ConfigStore, failure: str
) -> None:
    """The preferred account fails on a request one worker serves: the other worker
    does not try it either (its requests go to the spare at once), for a 5xx or a
    connection reset that open its circuit and for a 429's cooldown; and both
    workers use it again once it recovers."""
    with FakeUpstream() as flaky, FakeUpstream() as spare:
        flaky.respond(answering(Answer(text="preferred")))
        spare.respond(answering(Answer(text="spare")))
        add_account("preferred", flaky.base_url, 0)
        add_account("spare", spare.base_url, 1)
        store.update(
            lambda d: d.setdefault("routing", {}).update(failure_threshold=1, open_base=8.0)
        )
        key: str = run_cli("apikey", "add", "--name", "k", "--json").json()["key"]
        with two_workers(home) as (_, port, _pids):

            def both_use_the_preferred_account() -> bool:
                before = len(flaky.requests)
                by_worker = served_by_each(port, key)
                return len(flaky.requests) - before == sum(map(len, by_worker.values()))

            wait_until(both_use_the_preferred_account, 60, "both workers to use the preferred")
            flaky.reset()
            flaky.respond(_FAILURES[failure])
            status, failed_on = chat(port, key)
            assert status == 200  # the spare answered
            tried = len(flaky.requests)  # one worker tried the preferred account
            assert tried == 1 or (failure == "connection_dropped" and tried == 2)  # a retry
            by_worker = served_by_each(port, key)
            assert all(s == 200 for statuses in by_worker.values() for s in statuses)
            assert len(flaky.requests) == tried, f"tried again by a worker after {failed_on}"
            flaky.respond(answering(Answer(text="preferred again")))
            wait_until(both_use_the_preferred_account, 60, "both workers to use it again")


def session_chat(port: int, key: str, session: str) -> tuple[str, str]:
    """One request of ``session`` on its own connection: the answering account's text
    and the answering worker's id prefix."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                     headers={"authorization": f"Bearer {key}", "connection": "close",
                              "content-type": "application/json",
                              "x-claude-code-session-id": session})  # fmt: skip
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 200, answer
        text = str(answer["choices"][0]["message"]["content"])
        return text, (response.getheader("x-request-id") or "")[:16]
    finally:
        conn.close()


def test_a_session_lands_on_the_same_account_whichever_worker_serves_it(
    home: Path, store: ConfigStore
) -> None:
    with FakeUpstream() as first, FakeUpstream() as second:
        first.respond(answering(Answer(text="first")))
        second.respond(answering(Answer(text="second")))
        add_account("first", first.base_url, 0)
        add_account("second", second.base_url, 0)
        key: str = run_cli("apikey", "add", "--name", "k", "--json").json()["key"]
        with two_workers(home) as (_, port, _pids):
            assert chat(port, key)[0] == 200  # one worker's rotation is a step ahead
            accounts: dict[str, set[str]] = {}
            for n in range(8):
                session = f"conversation-{n}"
                workers: set[str] = set()
                for _ in range(60):
                    text, worker = session_chat(port, key, session)
                    accounts.setdefault(session, set()).add(text)
                    workers.add(worker)
                    if len(workers) == 2:
                        break
                assert len(workers) == 2  # both workers served the session
    assert all(len(served) == 1 for served in accounts.values()), accounts
    assert {text for served in accounts.values() for text in served} == {"first", "second"}


def test_a_nearly_spent_budget_is_overshot_by_at_most_one_request_across_two_workers(
    home: Path, store: ConfigStore
) -> None:
    """Twenty concurrent requests spread over both workers, against a budget with
    room for 2.5 requests: the workers see each other's reservations."""
    run_cli("apikey", "list")  # creates the file
    store.update(lambda d: d.update(prices=usage.PRICES, ledger={"flush_interval": 0.05}))
    with FakeUpstream() as up:
        up.respond(lambda request: json_reply(usage.message(), delay=0.3))
        usage.add_anthropic("only", up.port, priority=0)
        key_id, key = usage.add_key("--budget", str(usage.COST * 2.5), "--budget-period", "day")

        def call(_: int) -> tuple[int, str]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = {"model": usage.MODEL, "max_tokens": 50,
                    "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
            try:
                conn.request("POST", "/v1/messages", json.dumps(body),
                             {"x-api-key": key, "content-type": "application/json",
                              "anthropic-version": "2023-06-01", "connection": "close"})  # fmt: skip
                response = conn.getresponse()
                response.read()
                return response.status, (response.getheader("x-request-id") or "")[:16]
            finally:
                conn.close()

        with two_workers(home) as (_, port, _pids):
            assert call(0)[0] == 200  # a worker learns what a request costs
            with ThreadPoolExecutor(20) as pool:
                results = list(pool.map(call, range(20)))
            reader = usage.ledger(store)
            wait_until(lambda: reader.total().requests == 21, 30, "21 records")
    assert len({worker for _, worker in results}) == 2  # both workers had requests
    assert 429 in [status for status, _ in results]
    assert sum(status == 200 for status, _ in results) <= 3  # 2.5 left, plus one
    assert reader.spent(key_id, 0) <= usage.COST * 2.5 + usage.COST + 1e-12
