"""The ``finished`` hook: what one finished request adds to the metrics and the ledger."""

from __future__ import annotations

from typing import Any

import pytest
from prom_text import parse, value

from llm_gateway.config.schema import Config, parse_config
from llm_gateway.formats.unified import Usage
from llm_gateway.ledger.records import LedgerRecord
from llm_gateway.ledger.writer import LedgerWriter
from llm_gateway.metrics.families import GatewayMetrics
from llm_gateway.metrics.registry import render
from llm_gateway.pipeline.accounting import Accounting, BudgetGate
from llm_gateway.server.messages import Request

PRICES = {"as_of": "2026-01-01", "models": [{"match": "claude-*", "input": 1.0, "output": 5.0}]}


def config(provider: str = "anthropic", models: tuple[str, ...] = ("claude-x",)) -> Config:
    account = {"id": "acct", "name": "a", "type": "api-key", "provider": provider,
               "models": list(models)}  # fmt: skip
    return parse_config({"upstream_accounts": [account], "prices": PRICES})


def finished_request(n: int, **notes: Any) -> Request:
    base: dict[str, object] = {
        "client_format": "openai-chat", "key_id": "k1", "model": "claude-x",
        "upstream_model": "claude-x", "upstream_format": "anthropic-messages",
        "account_id": "acct", "attempts": 1, "streamed": False, "ttfb_ms": 20.0,
        "usage": Usage(input_tokens=100, output_tokens=10),
    }  # fmt: skip
    base.update(notes)
    return Request("POST", "/v1/chat/completions", "", [], b"", f"req-{n}", notes=base)


class Collect(LedgerWriter):
    """A writer that keeps what it is given (no thread, no file)."""

    def __init__(self) -> None:
        self.records: list[LedgerRecord] = []

    def submit(self, record: LedgerRecord) -> None:
        self.records.append(record)


def hook(current: list[Config]) -> tuple[Accounting, GatewayMetrics, Collect]:
    metrics, ledger = GatewayMetrics(), Collect()
    accounting = Accounting(
        lambda: current[0], metrics, ledger=ledger, budgets=BudgetGate(None), wall_clock=lambda: 1e9
    )
    return accounting, metrics, ledger


def scraped(metrics: GatewayMetrics) -> dict[str, Any]:
    return parse(render(metrics.registry.snapshot()))


def test_each_finished_request_counts_once_with_its_tokens_and_cost() -> None:
    accounting, metrics, ledger = hook([config()])
    for n in range(3):
        accounting.finished(finished_request(n), 200, 0.5)
    accounting.finished(
        finished_request(3, usage=Usage(input_tokens=7, cache_read_tokens=40)), 200, 0.1
    )
    accounting.finished(finished_request(4, error="UpstreamError", usage=None), 502, 0.05)
    accounting.finished(
        finished_request(5, model="unheard-of", account_id="", upstream_model="", usage=None),
        404,
        0.01,
    )
    m = scraped(metrics)
    gen_ai = {"gen_ai_provider_name": "anthropic", "gen_ai_request_model": "claude-x"}
    assert value(m, "llm_gateway_requests_total", status_class="2xx", account="acct") == 4
    assert (
        value(m, "llm_gateway_requests_total", status_class="5xx", error_kind="UpstreamError") == 1
    )
    assert value(m, "llm_gateway_requests_total", status_class="4xx", account="") == 1
    assert value(m, "gen_ai_client_operation_duration_seconds_count", **gen_ai) == 5
    assert value(m, "gen_ai_client_operation_duration_seconds_sum", **gen_ai) == pytest.approx(1.65)
    assert value(m, "gen_ai_client_operation_duration_seconds_bucket", le="0.64", **gen_ai) == 5
    assert value(m, "gen_ai_client_operation_duration_seconds_bucket", le="0.32", **gen_ai) == 2
    assert value(m, "gen_ai_server_time_to_first_token_seconds_count") == 4  # successes only
    tokens = "gen_ai_client_token_usage_sum"
    assert value(m, tokens, gen_ai_token_type="input", **gen_ai) == 3 * 100 + 7
    assert value(m, tokens, gen_ai_token_type="output", **gen_ai) == 3 * 10
    assert value(m, tokens, gen_ai_token_type="cache_read", **gen_ai) == 40
    assert value(m, "gen_ai_client_token_usage_count", gen_ai_token_type="cache_read") == 1
    # a request that reached no account has no token series at all
    assert value(m, "gen_ai_client_token_usage_count", gen_ai_provider_name="") == 0
    assert value(m, "llm_gateway_cost_total", key="k1") == pytest.approx(
        (3 * (100 * 1.0 + 10 * 5.0) + 7 * 1.0 + 40 * 1.0) / 1e6
    )
    assert len(ledger.records) == 6
    assert len({r.request_id for r in ledger.records}) == 6
    first = ledger.records[0]
    assert (first.status, first.input_tokens, first.output_tokens, first.ttfb_ms) == (
        200,
        100,
        10,
        20.0,
    )
    assert first.cost == pytest.approx((100 * 1.0 + 10 * 5.0) / 1e6)
    assert ledger.records[5].model == "unheard-of" and ledger.records[5].account_id == ""


def test_labels_follow_a_reloaded_configuration() -> None:
    current = [config("anthropic", ("claude-x",))]
    accounting, metrics, _ = hook(current)
    accounting.finished(finished_request(1, model="claude-y"), 200, 0.1)
    current[0] = config("openai", ("claude-x", "claude-y"))  # the account changed on reload
    accounting.finished(finished_request(2, model="claude-y"), 200, 0.1)
    m = scraped(metrics)
    count = "gen_ai_client_operation_duration_seconds_count"
    assert value(m, count, gen_ai_provider_name="anthropic", gen_ai_request_model="other") == 1
    assert value(m, count, gen_ai_provider_name="openai", gen_ai_request_model="claude-y") == 1
    # and the counts kept from before the reload are still there
    assert value(m, "llm_gateway_requests_total", account="acct") == 2
