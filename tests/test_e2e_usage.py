"""Metrics, the usage ledger and budgets end to end: a real gateway, fake upstreams.

Two Anthropic accounts serve ``claude-haiku-4-5``; answers report cache reads
and five-minute and one-hour cache writes, so every cost can be checked
against a hand calculation with the price table below.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, wait_until
from fake_upstream import (
    ANTHROPIC_UPSTREAM_KEY,
    FakeUpstream,
    Gate,
    Stream,
    anthropic_error,
    clear_proxy_environment,
    json_reply,
    running_gateway,
    sse,
)
from prom_text import parse, value

from llm_gateway.config.store import ConfigStore
from llm_gateway.ledger.query import LedgerReader

MODEL = "claude-haiku-4-5"
PRICES = {
    "currency": "USD",
    "as_of": "2026-01-01",
    "models": [
        {"match": "claude-haiku-*", "input": 1.0, "output": 5.0, "cache_read": 0.1,
         "cache_write_5m": 1.25, "cache_write_1h": 2.0},
    ],
}  # fmt: skip
#: what every answer here reports
USAGE = {
    "input_tokens": 1000,
    "cache_read_input_tokens": 3000,
    "cache_creation_input_tokens": 2000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1500, "ephemeral_1h_input_tokens": 500},
    "output_tokens": 200,
}
#: by hand: 1000 x 1 + 3000 x 0.1 + 1500 x 1.25 + 500 x 2 + 200 x 5, per million
COST = (1000 * 1.0 + 3000 * 0.1 + 1500 * 1.25 + 500 * 2.0 + 200 * 5.0) / 1e6


def message() -> dict[str, Any]:
    return {
        "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": USAGE,
    }  # fmt: skip


def events(gate: Gate | None = None) -> list[bytes | Gate]:
    start = {**message(), "content": [], "stop_reason": None, "usage": {**USAGE, "output_tokens": 1}}
    out: list[bytes | Gate] = [
        sse({"type": "message_start", "message": start}, "message_start"),
        sse({"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}}, "content_block_start"),
        sse({"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "hel"}}, "content_block_delta"),
    ]  # fmt: skip
    if gate is not None:
        out.append(gate)
    out += [
        sse({"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "lo"}}, "content_block_delta"),
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
             "usage": {"output_tokens": 200}}, "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ]  # fmt: skip
    return out


def answer(request: Any) -> Any:
    if request.stream:
        return Stream(events())
    return json_reply(message())


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> ConfigStore:
    clear_proxy_environment(monkeypatch)
    store = ConfigStore(Path(os.environ["LLM_GATEWAY_HOME"]) / "config.yaml")
    run_cli("apikey", "list")  # creates the file
    store.update(lambda d: d.update(prices=PRICES, ledger={"flush_interval": 0.05}))
    return store


def add_anthropic(name: str, port: int, priority: int) -> str:
    result = run_cli(
        "upstream", "add", "--type", "api-key", "--provider", "anthropic", "--name", name,
        "--key", ANTHROPIC_UPSTREAM_KEY, "--base-url", f"http://127.0.0.1:{port}",
        "--models", MODEL, "--priority", str(priority), "--json",
    )  # fmt: skip
    account_id: str = result.json()["id"]
    return account_id


_NAMES = itertools.count(1)


def add_key(*args: str) -> tuple[str, str]:
    """A gateway key with a name of its own (names are unique)."""
    data = run_cli("apikey", "add", "--name", f"k{next(_NAMES)}", "--json", *args).json()
    return data["id"], data["key"]


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as first, FakeUpstream() as second:
        first.respond(answer)
        second.respond(answer)
        yield first, second


def call(
    port: int, key: str, *, stream: bool = False, model: str = MODEL, path: str = "/v1/messages"
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = {"model": model, "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    try:
        conn.request("POST", path, json.dumps(body), {"x-api-key": key,
                     "content-type": "application/json", "anthropic-version": "2023-06-01"})  # fmt: skip
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def scrape(port: int, key: str | None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        conn.request("GET", "/metrics", headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def ledger(store: ConfigStore) -> LedgerReader:
    return LedgerReader(store.home / "usage.sqlite3")


def test_metrics_and_ledger_after_a_scripted_set_of_requests(
    store: ConfigStore, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    first, second = upstreams
    a = add_anthropic("first", first.port, priority=0)  # lower is tried first
    b = add_anthropic("second", second.port, priority=10)
    key_id, key = add_key()
    limited_id, limited = add_key("--rpm", "1")
    _, admin = add_key("--permissions", "read,write,admin")
    first.queue(anthropic_error(500, "api_error", "boom"))  # the first request fails over
    with running_gateway(store) as (_, port):
        assert call(port, key)[0] == 200  # first: 500, then second: 200
        assert call(port, key, stream=True)[0] == 200
        assert call(port, limited)[0] == 200
        status, body = call(port, limited)  # the key's one request a minute is spent
        assert status == 429 and json.loads(body)["error"]["type"] == "rate_limit_error"
        status, _ = call(port, key, model='no-such-"model"\nx')
        assert status == 404
        status, body = scrape(port, key)  # not an admin key
        assert status == 403 and "admin" in json.loads(body)["error"]["message"]
        assert scrape(port, None)[0] == 401
        wait_until(lambda: ledger(store).total().requests == 5, 30, "five ledger records")
        status, text = scrape(port, admin)
    assert status == 200
    m = parse(text)
    assert value(m, "llm_gateway_requests_total", status_class="2xx") == 3
    assert value(m, "llm_gateway_requests_total", status_class="4xx", error_kind="RateLimited") == 1
    assert value(m, "llm_gateway_requests_total", status_class="4xx", error_kind="NotFound") == 1
    assert value(m, "llm_gateway_requests_total", client_format="anthropic-messages") == 5
    assert value(m, "llm_gateway_upstream_attempts_total", account=a, outcome="server_error") == 1
    assert value(m, "llm_gateway_upstream_attempts_total", outcome="ok") == 3
    assert value(m, "llm_gateway_failovers_total", account=a) == 1
    assert value(m, "llm_gateway_key_rejections_total", key=limited_id, reason="rate_limit") == 1
    assert value(m, "llm_gateway_open_streams") == 0
    assert value(m, "llm_gateway_open_connections") >= 1  # this scrape's own
    assert value(m, "llm_gateway_circuit_state", account=b, state="closed") == 1
    tokens = {"gen_ai_request_model": MODEL, "gen_ai_provider_name": "anthropic"}
    for kind, count in (("input", 1000), ("cache_read", 3000), ("cache_creation", 2000),
                        ("output", 200)):  # fmt: skip
        assert value(m, "gen_ai_client_token_usage_sum", gen_ai_token_type=kind, **tokens) == (
            3 * count
        ), kind
    assert value(m, "gen_ai_client_operation_duration_seconds_count", **tokens) == 3
    # the unknown model is folded into one label value, never echoed (with the
    # rate-limited request, refused before its body was read)
    assert value(m, "gen_ai_client_operation_duration_seconds_count", gen_ai_request_model="other") == 2
    assert "no-such" not in text
    assert value(m, "gen_ai_server_time_to_first_token_seconds_count") == 3
    assert value(m, "llm_gateway_cost_total", key=key_id) == pytest.approx(2 * COST)
    assert ANTHROPIC_UPSTREAM_KEY not in text and key not in text and admin not in text

    records = ledger(store).recent(10)
    assert len(records) == 5 and len({r.request_id for r in records}) == 5
    served = [r for r in records if r.status == 200]
    assert len(served) == 3
    for record in served:
        assert (record.input_tokens, record.cache_read_tokens, record.cache_write_tokens,
                record.cache_write_1h_tokens, record.output_tokens) == (1000, 3000, 2000, 500, 200)  # fmt: skip
        assert record.cost == pytest.approx(COST, rel=1e-12)
        assert record.upstream_format == "anthropic-messages" and record.ttfb_ms is not None
    failed_over = [r for r in served if r.attempts == 2]
    assert len(failed_over) == 1 and failed_over[0].account_id == b
    assert [r.streamed for r in sorted(served, key=lambda r: r.time)] == [False, True, False]
    refused = [r for r in records if r.status == 429][0]
    assert (refused.key_id, refused.error_kind, refused.cost) == (limited_id, "RateLimited", 0.0)


def test_openai_client_streams_are_priced_from_the_final_usage(
    store: ConfigStore, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """A converted stream (OpenAI client, Anthropic upstream) costs what the
    upstream's final events report, cache reads and writes included."""
    add_anthropic("first", upstreams[0].port, priority=0)
    _, key = add_key()
    with running_gateway(store) as (_, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        conn.request("POST", "/v1/chat/completions", json.dumps(body),
                     {"authorization": f"Bearer {key}", "content-type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        assert response.status == 200 and b"[DONE]" in response.read()
        conn.close()
        wait_until(lambda: ledger(store).total().requests == 1, 30, "the record")
    record = ledger(store).recent(1)[0]
    assert record.streamed and record.client_format == "openai-chat"
    assert record.cost == pytest.approx(COST, rel=1e-12)


def test_a_client_that_leaves_mid_stream_is_recorded_once_with_what_was_billed(
    store: ConfigStore, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    first, _ = upstreams
    add_anthropic("first", first.port, priority=0)
    _, key = add_key()
    gate = Gate(timeout=20)
    first.respond(lambda request: Stream(events(gate)))
    with running_gateway(store) as (_, port):

        async def leave_early() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            body = json.dumps({"model": MODEL, "max_tokens": 5, "stream": True,
                               "messages": [{"role": "user", "content": "hi"}]}).encode()  # fmt: skip
            writer.write(
                b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                + f"x-api-key: {key}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            seen = b""
            while b"hel" not in seen:
                seen += await asyncio.wait_for(reader.read(4096), 20)
            writer.close()

        asyncio.run(leave_early())
        wait_until(lambda: ledger(store).total().requests == 1, 30, "the record")
        gate.open()
    record = ledger(store).recent(1)[0]
    # what message_start reported: the input side and one output token
    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (1000, 3000, 1)
    expected = (1000 * 1.0 + 3000 * 0.1 + 1500 * 1.25 + 500 * 2.0 + 1 * 5.0) / 1e6
    assert record.cost == pytest.approx(expected, rel=1e-12)
    assert record.streamed and record.status == 200


def test_mixed_burst_one_record_each(
    store: ConfigStore, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    first, _ = upstreams
    add_anthropic("first", first.port, priority=0)
    _, key = add_key()

    def reply(request: Any) -> Any:
        text = request.json()["messages"][0]["content"]
        if text == "fail":
            return anthropic_error(400, "invalid_request_error", "bad")
        return answer(request)

    first.respond(reply)
    with running_gateway(store) as (_, port):

        def one(i: int) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            body = {"model": MODEL, "max_tokens": 5, "stream": i % 3 == 1,
                    "messages": [{"role": "user", "content": "fail" if i % 3 == 2 else "hi"}]}  # fmt: skip
            conn.request("POST", "/v1/messages", json.dumps(body),
                         {"x-api-key": key, "content-type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            response.read()  # a stream read to its end, so its usage is the whole answer's
            conn.close()
            return response.status

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(30)))
        wait_until(lambda: ledger(store).total().requests == 30, 30, "thirty records")
    assert statuses.count(400) == 10
    records = ledger(store).recent(100)
    assert len(records) == 30 and len({r.request_id for r in records}) == 30
    ok = [r for r in records if r.status == 200]
    assert len(ok) == 20 and sum(r.streamed for r in ok) == 10
    assert all(r.cost == pytest.approx(COST, rel=1e-12) for r in ok)
    assert all(r.cost == 0 and r.status == 400 for r in records if r not in ok)


def test_budget_under_concurrency_overshoots_by_at_most_one_request(
    store: ConfigStore, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    first, _ = upstreams
    add_anthropic("first", first.port, priority=0)
    # room for 2.5 requests
    key_id, key = add_key("--budget", str(COST * 2.5), "--budget-period", "day")
    first.respond(lambda request: json_reply(message(), delay=0.3))
    with running_gateway(store) as (_, port):
        assert call(port, key)[0] == 200  # the gateway learns what a request costs
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda _: call(port, key), range(20)))
        wait_until(lambda: ledger(store).total().requests == 21, 30, "21 records")
    refused = [json.loads(body) for status, body in results if status == 429]
    assert refused, "the budget was never enforced"
    message_text = refused[0]["error"]["message"]
    assert "budget" in message_text and "per day" in message_text and "resets in" in message_text
    assert refused[0]["type"] == "error"  # Anthropic's error shape for /v1/messages
    spent = ledger(store).spent(key_id, 0)
    assert spent <= COST * 2.5 + COST + 1e-12
    listing = run_cli("apikey", "show", key_id, "--json").json()
    assert listing["budget_spent"] == pytest.approx(spent, abs=1e-6)
    assert listing["budget_period"] == "day" and listing["budget_resets_at"].endswith("Z")


def test_usage_cli_table_json_csv(
    store: ConfigStore, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    add_anthropic("first", upstreams[0].port, priority=0)
    key_id, key = add_key()
    with running_gateway(store) as (_, port):
        for stream in (False, True, False):
            assert call(port, key, stream=stream)[0] == 200
        wait_until(lambda: ledger(store).total().requests == 3, 30, "three records")
    summary = run_cli("usage", "summary", "--by", "key", "--json").json()
    row = summary["rows"][0]
    assert (row["group"], row["requests"], row["cache_read_tokens"]) == (key_id, 3, 9000)
    assert row["cost"] == pytest.approx(3 * COST, rel=1e-12)
    assert row["cache_hit_rate"] == 0.5  # 3000 of 6000 input tokens
    assert summary["currency"] == "USD" and summary["prices_as_of"] == "2026-01-01"
    table = run_cli("usage", "summary", "--by", "model")
    lines = table.out.splitlines()
    assert lines[0].split()[:3] == ["MODEL", "REQUESTS", "ERRORS"]
    assert lines[1].split()[:3] == [MODEL, "3", "0"]
    assert set(lines[2].replace(" ", "")) == {"-"}
    assert lines[3].split() == ["total", "3", "0", "3,000", "600", "9,000", "6,000", "0",
                                "50.0%", f"{3 * COST:.4f}"]  # fmt: skip
    assert lines[4] == "Prices as of 2026-01-01."
    assert len({len(line) for line in lines[:4]}) == 1  # columns aligned, numbers right
    csv_out = run_cli("usage", "summary", "--by", "model", "--csv").out.splitlines()
    assert csv_out[0].startswith("model,requests,errors")
    assert csv_out[1].split(",")[-1] == repr(3 * COST) or float(csv_out[1].split(",")[-1]) == (
        pytest.approx(3 * COST, rel=1e-15)
    )
    recent = run_cli("usage", "requests", "--limit", "2", "--json").json()
    assert len(recent) == 2 and recent[0]["time"] >= recent[1]["time"]
    assert run_cli("usage", "requests", "--status", "5xx", "--json").json() == []
    export = run_cli("usage", "export", "--since", "1d").out.splitlines()
    assert len(export) == 4 and export[0].startswith("time,request_id,key_id")


def test_sigkill_mid_burst_loses_at_most_a_batch_and_keeps_the_file(
    home: Path, store: ConfigStore, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    import signal
    import subprocess

    from conftest import free_port, server_command, subprocess_env

    add_anthropic("first", upstreams[0].port, priority=0)
    _, key = add_key()
    store.update(lambda d: d.update(ledger={"flush_interval": 0.05, "batch_size": 8}))
    port = free_port()
    process = subprocess.Popen(
        server_command(port),
        env=subprocess_env(LLM_GATEWAY_HOME=str(home), LOG_LEVEL="warning",
                           **{v: "" for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    done = 0
    try:
        wait_until(lambda: _answers(port), 20, "the gateway to start")
        stop = False

        def one(_: int) -> None:
            nonlocal done
            if not stop and call(port, key)[0] == 200:
                done += 1

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(one, i) for i in range(200)]
            wait_until(lambda: done >= 40, 60, "forty answered requests")
            process.send_signal(signal.SIGKILL)
            stop = True
            for future in futures:
                with contextlib.suppress(OSError):
                    future.result(30)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    path = home / "usage.sqlite3"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    written = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    conn.close()
    assert written <= done + 4
    assert written >= done - 8 - 4  # one batch, and the requests in flight when killed


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def test_two_workers_scrape_sums_both_and_share_the_ledger(
    home: Path, store: ConfigStore, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    import subprocess

    from conftest import free_port, server_command, subprocess_env

    add_anthropic("first", upstreams[0].port, priority=0)
    _, key = add_key()
    port, metrics_port = free_port(), free_port()
    store.update(lambda d: d.update(metrics={"listen": f"127.0.0.1:{metrics_port}"}))
    process = subprocess.Popen(
        server_command(port, "--workers", "2"),
        env=subprocess_env(LLM_GATEWAY_HOME=str(home), LOG_LEVEL="warning",
                           **{v: "" for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_until(lambda: _answers(port), 20, "the gateway to start")
        with ThreadPoolExecutor(6) as pool:  # a new connection each: both workers serve
            statuses = list(pool.map(lambda i: call(port, key, stream=i % 2 == 1)[0], range(40)))
        assert statuses == [200] * 40
        snapshots = home / "run" / f"metrics-{port}"

        def per_worker() -> list[float]:
            counts = []
            for path in snapshots.glob("*.json"):
                try:
                    snap = json.loads(path.read_text())
                except ValueError:
                    return []
                samples = snap["llm_gateway_requests_total"]["samples"]
                counts.append(sum(v for _, v in samples))
            return counts

        wait_until(lambda: len(per_worker()) == 2 and sum(per_worker()) == 40, 30,
                   "both workers' snapshots")  # fmt: skip
        assert all(count > 0 for count in per_worker()), "one worker served everything"

        def scraped() -> float:
            status, text = scrape(metrics_port, None)  # the metrics listener needs no key
            assert status == 200
            return value(parse(text), "llm_gateway_requests_total", status_class="2xx")

        for _ in range(6):  # whichever worker answers, the sum over both
            wait_until(lambda: scraped() == 40, 30, "the sum over both workers")
        conn = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=10)
        conn.request("GET", "/health")
        assert conn.getresponse().status == 404  # the listener serves /metrics only
        conn.close()
        wait_until(lambda: ledger(store).total().requests == 40, 30, "forty records")
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert b"database is locked" not in err and b"not written" not in err
    assert ledger(store).total().cost == pytest.approx(40 * COST, rel=1e-9)


def test_config_reloads_and_their_failures_are_counted(store: ConfigStore) -> None:
    _, admin = add_key("--permissions", "read,write,admin")
    path = store.path
    with running_gateway(store) as (gateway, port):
        good = path.read_text()
        path.write_text(good + "\nnot: [valid\n")
        wait_until(lambda: gateway.state.config_error is not None, 15, "the bad file refused")
        path.write_text(good + "\n# a comment\n")
        wait_until(lambda: gateway.state.config_error is None, 15, "the good file loaded")
        status, text = scrape(port, admin)
    assert status == 200
    m = parse(text)
    assert value(m, "llm_gateway_config_reloads_total", result="failed") == 1
    assert value(m, "llm_gateway_config_reloads_total", result="ok") == 1


def test_metrics_can_be_turned_off(store: ConfigStore) -> None:
    _, admin = add_key("--permissions", "read,write,admin")
    store.update(lambda d: d.update(metrics={"enabled": False}))
    with running_gateway(store) as (_, port):
        status, body = scrape(port, admin)
    assert status == 404 and "metrics.enabled" in json.loads(body)["error"]["message"]


def test_a_retry_on_the_same_account_is_counted_apart_from_failovers(
    store: ConfigStore, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    first, _ = upstreams
    only = add_anthropic("only", first.port, priority=0)
    _, key = add_key()
    _, admin = add_key("--permissions", "read,write,admin")
    # a lone account busy for a second, then serving: the gateway waits and sends again
    first.queue(anthropic_error(429, "rate_limit_error", "slow down", [("retry-after", "1")]))
    with running_gateway(store) as (_, port):
        assert call(port, key)[0] == 200
        wait_until(lambda: ledger(store).total().requests == 1, 30, "the request's record")
        status, text = scrape(port, admin)
    assert status == 200
    assert len(first.requests) == 2
    m = parse(text)
    assert value(m, "llm_gateway_retries_total", account=only) == 1
    assert value(m, "llm_gateway_failovers_total") == 0
    assert value(m, "llm_gateway_upstream_attempts_total", account=only, outcome="rate_limited") == 1
    assert value(m, "llm_gateway_upstream_attempts_total", account=only, outcome="ok") == 1
    assert value(m, "llm_gateway_requests_total", status_class="2xx") == 1
    (record,) = ledger(store).recent(5)
    assert (record.status, record.attempts, record.account_id) == (200, 2, only)
