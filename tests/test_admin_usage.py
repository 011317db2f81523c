"""The admin page's usage data: chart windows and dense series from the ledger's
rows (pure), and ``/admin/api/usage`` and ``/admin/api/requests`` over a real
ledger file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_gateway import MODEL, PRICES, AdminSetup, admin_gateway, record
from conftest import wait_until
from fake_upstream import clear_proxy_environment

from llm_gateway.admin.usage import OTHER, TOP_GROUPS, chart_data, window
from llm_gateway.errors import InvalidRequest
from llm_gateway.ledger.query import LedgerReader, SeriesPoint

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


# --- pure shaping -------------------------------------------------------------------------


def test_a_window_ends_with_the_bucket_holding_now_on_bucket_edges() -> None:
    win = window("24h", T0 + 1800 * 3 + 5)
    assert win.step == 1800 and win.buckets == 48
    assert win.until == T0 + 1800 * 4 and win.since == win.until - 86400
    assert window("1h", T0).buckets == 60 and window("30d", T0).step == 86400
    with pytest.raises(InvalidRequest, match="unknown range 'forever'"):
        window("forever", T0)


def test_series_are_dense_per_group_and_metric() -> None:
    win = window("1h", T0 + 59)  # buckets of a minute, the last one holding T0
    last = win.buckets - 1
    points = [
        SeriesPoint(T0, "gpt-a", 3, 1, 300, 30, 0.75),
        SeriesPoint(T0 - 120, "gpt-b", 1, 0, 50, 5, 0.5),
    ]
    data = chart_data(points, win)
    assert [g["id"] for g in data["groups"]] == ["gpt-a", "gpt-b"]
    requests = data["series"]["requests"]
    assert requests["gpt-a"][last] == 3 and sum(requests["gpt-a"]) == 3
    assert requests["gpt-b"][last - 2] == 1 and len(requests["gpt-b"]) == 60
    assert data["series"]["tokens"]["gpt-a"][last] == 330
    assert data["series"]["errors"]["gpt-a"][last] == 1
    assert data["series"]["cost"]["gpt-b"][last - 2] == 0.5


def test_groups_beyond_the_largest_are_summed_into_other() -> None:
    win = window("1h", T0)
    points = [SeriesPoint(T0, f"m{i:02d}", 100 - i, 0, 1, 1, 0.0) for i in range(TOP_GROUPS + 3)]
    data = chart_data(points, win, {"m00": "the biggest"})
    ids = [g["id"] for g in data["groups"]]
    assert ids == [f"m{i:02d}" for i in range(TOP_GROUPS)] + [OTHER]
    assert data["groups"][0]["label"] == "the biggest"
    folded = sum(100 - i for i in range(TOP_GROUPS, TOP_GROUPS + 3))
    assert data["series"]["requests"][OTHER][-1] == folded


# --- the endpoints --------------------------------------------------------------------------


@pytest.fixture
def setup(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminSetup]:
    clear_proxy_environment(monkeypatch)
    with admin_gateway(home) as running:
        yield running


def test_without_a_ledger_usage_says_so_and_shows_nothing_made_up(setup: AdminSetup) -> None:
    setup.gateway.admin.ledger = lambda: None
    assert setup.json("GET", "/admin/api/usage", setup.admin_key) == {"ledger": False}
    assert setup.json("GET", "/admin/api/requests", setup.admin_key) == {"ledger": False}


def test_usage_by_key_and_the_latest_requests_come_from_the_ledger(setup: AdminSetup) -> None:
    now = time.time()
    user_id = next(
        k["id"] for k in setup.store.read_document()["gateway_keys"] if k["name"] == "app"
    )
    setup.use_ledger(
        [
            record(now - 30, key_id=user_id, request_id="r1"),
            record(now - 20, key_id=user_id, request_id="r2", status=502, error_kind="api_error"),
            record(now - 10, key_id="gone", request_id="r3", model="gpt-b", cost=1.0),
            record(now - 3 * 86400, key_id=user_id, request_id="old"),
        ],
    )
    data = setup.json("GET", "/admin/api/usage?range=24h&by=key", setup.admin_key)
    assert data["ledger"] is True and data["by"] == "key" and data["step_s"] == 1800
    assert {g["id"]: g["label"] for g in data["groups"]} == {user_id: "app", "gone": "gone"}
    assert sum(data["series"]["requests"][user_id]) == 2  # the 3-day-old one is outside
    assert sum(data["series"]["errors"][user_id]) == 1
    assert sum(data["series"]["cost"]["gone"]) == 1.0
    assert data["total"]["requests"] == 3 and data["total"]["cost"] == 1.5
    by_group = {row["group"]: row for row in data["summary"]}
    assert by_group[user_id]["label"] == "app" and by_group[user_id]["input_tokens"] == 200

    latest = setup.json("GET", "/admin/api/requests?limit=2", setup.admin_key)["requests"]
    assert [r["request_id"] for r in latest] == ["r3", "r2"]
    assert latest[1]["status"] == 502 and latest[1]["key_name"] == "app"
    assert latest[1]["error_kind"] == "api_error"


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/admin/api/usage?range=1y", "unknown range '1y'"),
        ("/admin/api/usage?by=colour", "unknown 'by' 'colour'"),
        ("/admin/api/requests?limit=0", "'limit' must be 1 to 500"),
        ("/admin/api/requests?limit=lots", "'limit' must be 1 to 500"),
    ],
)
def test_bad_usage_parameters_are_400s_naming_them(
    setup: AdminSetup, path: str, fragment: str
) -> None:
    status, _, raw = setup.call("GET", path, setup.admin_key)
    assert status == 400 and fragment in raw.decode()


def test_usage_needs_an_admin_key(setup: AdminSetup) -> None:
    for path in ("/admin/api/usage", "/admin/api/requests"):
        assert setup.call("GET", path, setup.user_key)[0] == 403
        assert setup.call("GET", path, None)[0] == 401


def test_real_requests_reach_the_charts_the_list_and_the_key_budget(setup: AdminSetup) -> None:
    for _ in range(2):
        assert setup.chat() == 200
    latest = wait_until(
        lambda: setup.json("GET", "/admin/api/requests?limit=5", setup.admin_key)["requests"],
        20.0,
        "the ledger to record the requests",
    )
    wait_until(
        lambda: len(setup.json("GET", "/admin/api/requests", setup.admin_key)["requests"]) == 2,
        20.0,
        "both requests in the ledger",
    )
    latest = setup.json("GET", "/admin/api/requests", setup.admin_key)["requests"]
    first = latest[-1]  # the broken account failed, the healthy one served: two attempts
    assert first["attempts"] == 2 and first["account_id"] == setup.healthy
    assert first["account_name"] == "healthy"
    assert first["key_name"] == "app" and first["status"] == 200 and first["model"] == MODEL
    cost = (
        first["input_tokens"] * PRICES["input"] + first["output_tokens"] * PRICES["output"]
    ) / 1e6
    assert first["input_tokens"] > 0 and first["cost"] == pytest.approx(cost)

    data = setup.json("GET", "/admin/api/usage?range=1h&by=account", setup.admin_key)
    assert data["total"]["requests"] == 2
    assert [g["label"] for g in data["groups"]] == ["healthy"]
    assert sum(data["series"]["requests"][setup.healthy]) == 2

    keys = {k["name"]: k for k in setup.json("GET", "/admin/api/keys", setup.admin_key)["keys"]}
    app = keys["app"]
    assert app["budget"] == 5 and app["budget_period"] == "day"
    assert app["budget_spent"] == pytest.approx(sum(r["cost"] for r in latest))
    assert app["budget_resets_at"].endswith("T00:00:00+00:00")
    assert keys["ops"]["budget"] is None and keys["ops"]["budget_spent"] is None


def test_a_ledger_that_cannot_be_read_is_a_503_not_a_traceback(setup: AdminSetup) -> None:
    broken = setup.store.home / "not-a-ledger.db"
    broken.write_bytes(b"this is not a SQLite file" * 100)
    setup.gateway.admin.ledger = lambda: LedgerReader(broken)
    for path in ("/admin/api/usage", "/admin/api/requests"):
        status, _, raw = setup.call("GET", path, setup.admin_key)
        assert status == 503, (path, raw)
        message = json.loads(raw)["error"]["message"]
        assert message.startswith("the usage ledger cannot be read now: ")
    # the keys are still listed; a budget's spend is left out, and why is said
    keys = setup.json("GET", "/admin/api/keys", setup.admin_key)
    assert keys["ledger_error"].startswith("the usage ledger cannot be read now: ")
    app = next(k for k in keys["keys"] if k["name"] == "app")
    assert app["budget"] == 5 and app["budget_spent"] is None
