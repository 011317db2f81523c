"""Capacity out of the box: connection limits sized from the open-file limit, the
limit raised at start, and the gateway's own limits never blamed on an account."""

from __future__ import annotations

import asyncio
import errno
import http.client
import json
import os
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import connect, raw_request, read_response, wait_until
from fake_upstream import (
    Answer,
    FakeUpstream,
    Gate,
    Stream,
    add_account,
    add_gateway_key,
    answering,
    clear_proxy_environment,
    openai_chat_events,
    running_gateway,
)

from llm_gateway.config.network import ProxyConfig, ServerConfig
from llm_gateway.config.schema import parse_config
from llm_gateway.config.store import ConfigStore
from llm_gateway.pipeline.outcomes import Outcome, classify_error, record
from llm_gateway.routing.health import CircuitState, FailureKind, HealthPolicy, HealthTracker
from llm_gateway.server.capacity import (
    RESERVED_FILES,
    Capacity,
    OpenFiles,
    connections_for,
    describe,
    overcommitted,
    plan,
)
from llm_gateway.upstream.errors import LocalResourceError, PoolTimeout

MODEL = "gpt-capacity"

# --- the limits (pure) ------------------------------------------------------------


def test_the_default_limits_are_auto_and_follow_the_open_file_limit() -> None:
    config = parse_config({})
    assert config.server.max_connections is None
    assert config.proxy.max_connections_per_upstream is None
    assert plan(20_000, config.server, config.proxy) == Capacity(
        max_connections=(20_000 - RESERVED_FILES) // 2,
        per_upstream=(20_000 - RESERVED_FILES) // 2,
        allowed=(20_000 - RESERVED_FILES) // 2,
    )
    # a container's usual limit: half a million streams' worth of descriptors
    assert connections_for(1 << 20) > 500_000
    assert connections_for(10) == 1


def test_numbers_in_the_config_are_used_as_they_are_and_excess_is_reported() -> None:
    config = parse_config(
        {"server": {"max_connections": 100}, "proxy": {"max_connections_per_upstream": "auto"}}
    )
    capacity = plan(1024, config.server, config.proxy)
    assert (capacity.max_connections, capacity.per_upstream) == (100, connections_for(1024))
    assert overcommitted(capacity) == []
    big = plan(1024, ServerConfig(max_connections=5000), ProxyConfig())
    assert overcommitted(big) == [
        f"server.max_connections is 5000, more than the open-file limit allows "
        f"({connections_for(1024)})"
    ]


def test_the_start_up_line_says_how_many_connections_the_limit_allows() -> None:
    capacity = plan(65536, ServerConfig(), ProxyConfig())
    assert describe(OpenFiles(soft=65536, hard=65536, before=1024), capacity) == (
        "open-file limit raised from 1024 to 65536: room for 32736 concurrent client "
        "connections, each with its upstream connection"
    )
    assert describe(OpenFiles(soft=65536, hard=65536, before=65536), capacity).startswith(
        "open-file limit 65536: room for 32736"
    )


# --- the gateway's own limits are not the account's failure ------------------------


@pytest.mark.parametrize(
    "error",
    [
        PoolTimeout("waiting for a free connection to x: pool timeout of 30s exceeded"),
        LocalResourceError("connecting to x failed: the gateway is out of resources"),
    ],
    ids=["pool-queue-timeout", "out-of-descriptors"],
)
def test_a_busy_gateway_leaves_the_account_health_untouched(error: Exception) -> None:
    assert isinstance(error, (PoolTimeout, LocalResourceError))
    outcome = classify_error(error)
    assert outcome is Outcome.BUSY
    policy = HealthPolicy(failure_threshold=1, open_base=1.0, open_max=1.0)
    health = HealthTracker(policy)
    for now in range(5):
        record(health, "up-1", outcome, float(now))
    fresh = HealthTracker(policy).snapshot("up-1", 4.0)
    assert health.snapshot("up-1", 4.0) == fresh
    # a half-open probe that met the gateway's own limit hands its slot back
    health.record_failure("up-1", 5.0, FailureKind.CONNECT)
    assert health.try_acquire_probe("up-1", 6.0)
    record(health, "up-1", outcome, 6.0)
    snapshot = health.snapshot("up-1", 6.0)
    assert snapshot.state is CircuitState.HALF_OPEN and snapshot.available


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> ConfigStore:
    clear_proxy_environment(monkeypatch)
    return ConfigStore(Path(os.environ["LLM_GATEWAY_HOME"]) / "config.yaml")


def post(port: int, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_running_out_of_descriptors_is_a_503_and_never_opens_the_accounts_circuit(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeUpstream() as up:
        up.respond(answering(Answer(text="fine")))
        account = add_account(
            "openai", up.base_url + "/v1", name="main", key="sk-" + "m" * 24, models="gpt-*"
        )
        key = add_gateway_key()
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        with running_gateway(store) as (gateway, port):
            real = asyncio.BaseEventLoop.create_connection

            async def out_of_descriptors(*args: Any, **kwargs: Any) -> Any:
                raise OSError(errno.EMFILE, "Too many open files")

            # Only the gateway's upstream connections use the event loop's
            # create_connection here: the client below is http.client.
            monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", out_of_descriptors)
            for _ in range(5):  # more than failure_threshold (3)
                status, answer = post(port, key, body)
                assert status == 503, answer
                assert "out of file descriptors" in answer["error"]["message"]
                assert "127.0.0.1" not in answer["error"]["message"]
            snapshot = gateway.health.snapshot(account, 0.0)
            assert snapshot.state is CircuitState.CLOSED
            assert snapshot.total_failures == 0 and snapshot.consecutive_failures == 0
            monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", real)
            status, answer = post(port, key, body)
            assert status == 200, answer
            assert answer["choices"][0]["message"]["content"] == "fine"
            assert up.requests  # the account served as soon as descriptors were free


# --- many long streams through one upstream with the default configuration ----------

STREAMS = 600  # more than the old fixed cap of 512 connections per upstream


@pytest.fixture
def enough_descriptors() -> Iterator[None]:
    """This process holds every side of every stream (client, gateway, upstream)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 5 * STREAMS + 500
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the open-file hard limit ({hard}) is below {needed}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_600_streams_to_one_upstream_are_all_open_at_once_with_the_default_config(
    store: ConfigStore, enough_descriptors: None
) -> None:
    gate = Gate(timeout=120.0)
    events = openai_chat_events(Answer(text="held open"), MODEL, include_usage=False)
    with FakeUpstream() as up:
        # the first event at once, the rest only when the test opens the gate
        up.respond(Stream([events[0], gate, *events[1:]]))
        add_account("openai", up.base_url + "/v1", name="main", key="sk-" + "m" * 24)
        key = add_gateway_key()
        body = json.dumps(
            {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        ).encode()
        request = raw_request(
            "POST",
            "/v1/chat/completions",
            headers=[("authorization", f"Bearer {key}"), ("content-type", "application/json")],
            body=body,
        )
        with running_gateway(store) as (_, port):

            async def one_stream() -> tuple[int, bytes]:
                reader, writer = await connect(port)
                try:
                    writer.write(request)
                    await writer.drain()
                    response = await asyncio.wait_for(read_response(reader), 180)
                    return response.status, response.body
                finally:
                    writer.close()

            async def scenario() -> list[tuple[int, bytes]]:
                streams = []
                for _ in range(STREAMS):
                    streams.append(asyncio.ensure_future(one_stream()))
                    await asyncio.sleep(0.002)  # a new stream every 2 ms
                await asyncio.to_thread(
                    wait_until,
                    lambda: len(up.requests) >= STREAMS,
                    120.0,
                    f"all {STREAMS} streams to be open upstream at once",
                )
                gate.open()
                return await asyncio.gather(*streams)

            results = asyncio.run(scenario())
    assert not gate.timed_out
    assert [status for status, _ in results] == [200] * STREAMS
    assert all(b'"held "' in body and b'"open"' in body for _, body in results)
    assert all(body.rstrip().endswith(b"data: [DONE]") for _, body in results)
