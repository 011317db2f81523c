"""The metrics registry and its text rendering, checked with a strict parser."""

from __future__ import annotations

import pytest
from prom_text import parse, value

from llm_gateway.config.schema import parse_config
from llm_gateway.metrics.families import GatewayMetrics, model_label
from llm_gateway.metrics.registry import Registry, merge, render


def test_rendering_follows_the_format() -> None:
    r = Registry()
    c = r.counter("x_requests_total", "Requests.\nSecond line with a \\ backslash.", ("who",))
    c.inc(('a "quoted"\nname\\',))
    c.inc(("b",), 2.5)
    h = r.histogram("x_seconds", "Durations.", ("op",), (0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 7.0):
        h.observe(("chat",), v)
    g = r.gauge("x_open", "Open things.")
    g.set((), 3)
    text = render(r.snapshot())
    families = parse(text)
    assert value(families, "x_requests_total", who='a "quoted"\nname\\') == 1
    assert value(families, "x_requests_total") == 3.5
    assert value(families, "x_seconds_bucket", op="chat", le="0.1") == 2  # le is inclusive
    assert value(families, "x_seconds_bucket", op="chat", le="1") == 3
    assert value(families, "x_seconds_bucket", op="chat", le="+Inf") == 4
    assert value(families, "x_seconds_count", op="chat") == 4
    assert value(families, "x_seconds_sum", op="chat") == pytest.approx(7.65)
    assert value(families, "x_open") == 3
    assert "# HELP x_requests_total Requests.\\nSecond line with a \\\\ backslash." in text


def test_counters_must_end_in_total_and_only_go_up() -> None:
    r = Registry()
    with pytest.raises(ValueError):
        r.counter("x_requests", "no suffix")
    with pytest.raises(ValueError):
        r.counter("y_total", "").inc((), -1)
    with pytest.raises(ValueError):
        r.counter("z_total", "", ("a",)).inc(())  # wrong number of label values


def test_snapshots_of_workers_add_up() -> None:
    def worker(n: int) -> dict:  # type: ignore[type-arg]
        r = Registry()
        r.counter("q_total", "", ("k",)).inc(("a",), n)
        h = r.histogram("d_seconds", "", (), (1.0,))
        for _ in range(n):
            h.observe((), 2.0)
        r.gauge("o", "").set((), n)
        return r.snapshot()

    families = parse(render(merge([worker(1), worker(2), worker(4)])))
    assert value(families, "q_total", k="a") == 7
    assert value(families, "d_seconds_count") == 7
    assert value(families, "d_seconds_bucket", le="+Inf") == 7
    assert value(families, "o") == 7


def test_every_gateway_family_renders_and_parses() -> None:
    m = GatewayMetrics()
    m.requests.inc(("openai-chat", "acct", "2xx", ""))
    m.tokens.observe(("chat", "anthropic", "m", "cache_read"), 300)
    m.duration.observe(("chat", "anthropic", "m", ""), 0.3)
    families = parse(render(m.registry.snapshot()))
    assert "gen_ai_client_token_usage" in families
    assert families["gen_ai_client_operation_duration_seconds"].type == "histogram"


def test_model_labels_are_bounded() -> None:
    config = parse_config(
        {
            "upstream_accounts": [
                {"id": "a", "name": "a", "type": "api-key", "provider": "openai",
                 "models": ["gpt-4o", "claude-*"], "model_map": {"fast": "gpt-4o-mini"}},
            ],
            "model_aliases": {"best": "gpt-4o"},
        }
    )  # fmt: skip
    assert model_label(config, "gpt-4o") == "gpt-4o"
    assert model_label(config, "fast") == "fast"
    assert model_label(config, "best") == "best"
    assert model_label(config, "claude-anything-at-all") == "claude-*"
    assert model_label(config, 'gpt-"injected"\n') == "other"


def test_model_labels_follow_a_new_configuration() -> None:
    m = GatewayMetrics()
    account = {"id": "a", "name": "a", "type": "api-key", "provider": "openai", "models": ["m1"]}
    first = parse_config({"upstream_accounts": [account]})
    assert m.model_label(first, "m2") == "other"
    second = parse_config({"upstream_accounts": [{**account, "models": ["m1", "m2"]}]})
    assert m.model_label(second, "m2") == "m2"  # the reloaded config names it now
