"""The admin page in a real browser: Debian's Chromium, headless, driven by
Playwright. Skipped (with the reason) when either is missing; ``.ci/run``
installs both.

Every page the test looks at is saved as a screenshot under the test's
``tmp_path`` and under ``tests/artifacts/`` (not tracked), for review.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_gateway import AdminSetup, admin_gateway, record
from conftest import REPO, run_cli
from fake_upstream import clear_proxy_environment

from llm_gateway.ledger.query import LedgerReader

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "tests" / "artifacts"
#: milliseconds Playwright waits for what the page should show (a loaded machine is slow)
SHOWN_MS = 20_000

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@pytest.fixture
def setup(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminSetup]:
    clear_proxy_environment(monkeypatch)
    with admin_gateway(home) as running:
        yield running


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A fresh page; with every URL it requested and every console error."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            page.set_default_timeout(SHOWN_MS)
            sync_api.expect.set_options(timeout=SHOWN_MS)
            requested: list[str] = []
            console_errors: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.on(
                "console",
                lambda message: (
                    console_errors.append(message.text) if message.type == "error" else None
                ),
            )
            yield page, requested, console_errors
        finally:
            browser.close()


def screenshot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(path, ARTIFACTS / path.name)


def sign_in(page: Any, key: str) -> None:
    page.fill("#key", key)
    page.click("#login-form button[type=submit]")


def test_a_key_without_admin_is_refused_and_forgotten(
    setup: AdminSetup, browser_page: tuple[Any, list[str], list[str]], tmp_path: Path
) -> None:
    page, _, _ = browser_page
    page.goto(f"http://127.0.0.1:{setup.port}/admin")
    screenshot(page, tmp_path, "admin-login")
    sign_in(page, setup.user_key)
    error = page.locator("#login-error")
    sync_api.expect(error).to_have_text("this API key lacks the 'admin' permission")
    sync_api.expect(page.locator("#login")).to_be_visible()
    sync_api.expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    screenshot(page, tmp_path, "admin-refused")


def test_an_admin_sees_health_disables_an_account_and_the_cli_agrees(
    setup: AdminSetup, browser_page: tuple[Any, list[str], list[str]], tmp_path: Path
) -> None:
    page, requested, console_errors = browser_page
    setup.break_the_first_account()
    page.goto(f"http://127.0.0.1:{setup.port}/admin")
    sign_in(page, setup.admin_key)

    broken = page.locator(f"#accounts tr[data-account='{setup.broken}']")
    healthy = page.locator(f"#accounts tr[data-account='{setup.healthy}']")
    sync_api.expect(broken.locator(".state")).to_have_text("circuit open")
    sync_api.expect(healthy.locator(".state")).to_have_text("healthy")
    sync_api.expect(broken).to_contain_text("server_error")
    keys = page.locator("#keys tbody")
    sync_api.expect(keys).to_contain_text("ops")
    sync_api.expect(keys.locator("tr[data-key]")).to_have_count(2)
    sync_api.expect(keys.locator("tr[data-key]", has_text="app")).to_contain_text(
        "of 5 per day (resets "
    )
    # the request that failed over is in the ledger: listed (two attempts) and charted
    served = page.locator("#requests tbody tr[data-request]")
    sync_api.expect(served).to_have_count(1)
    sync_api.expect(served.locator("td").nth(5)).to_have_text("2")
    sync_api.expect(page.locator("#chart-requests svg rect")).to_have_count(1)
    screenshot(page, tmp_path, "admin-dashboard")

    # the key lives in this tab's session storage, never in the address
    assert page.evaluate("sessionStorage.getItem('llm-gateway-admin-key')") == setup.admin_key
    assert setup.admin_key not in page.url
    assert setup.admin_key not in page.content()

    healthy.get_by_role("button", name="Disable").click()
    sync_api.expect(healthy.locator(".state")).to_have_text("disabled")
    sync_api.expect(healthy.get_by_role("button", name="Enable")).to_be_visible()
    screenshot(page, tmp_path, "admin-disabled")
    listed = run_cli("upstream", "list", "--json").json()
    assert {a["id"]: a["enabled"] for a in listed} == {setup.broken: True, setup.healthy: False}
    assert "disabled" in run_cli("upstream", "list").out

    # live: a request made now (nothing left to serve it) appears without a reload
    assert setup.chat() >= 500
    sync_api.expect(served).to_have_count(2)
    sync_api.expect(served.first.locator("td.status-bad")).to_be_visible()
    sync_api.expect(page.locator("#chart-errors svg rect")).to_have_count(1)

    # a reload of the tab keeps the session; signing out forgets the key
    page.reload()
    sync_api.expect(healthy.locator(".state")).to_have_text("disabled")
    page.click("#logout")
    sync_api.expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0

    origin = f"http://127.0.0.1:{setup.port}/"
    assert requested and all(url.startswith(origin) for url in requested), requested
    assert all(setup.admin_key not in url for url in requested)
    assert console_errors == []  # no policy violation, no script error


def test_usage_charts_and_the_latest_requests_render(
    setup: AdminSetup, browser_page: tuple[Any, list[str], list[str]], tmp_path: Path
) -> None:
    page, requested, console_errors = browser_page
    now = time.time()
    user_id = next(
        k["id"] for k in setup.store.read_document()["gateway_keys"] if k["name"] == "app"
    )
    records = [
        record(now - 60 * i, key_id=user_id, request_id=f"r{i}", model=model, cost=0.01 * i)
        for i, model in enumerate(["gpt-a", "gpt-b", "gpt-a", "gpt-c"] * 6)
    ]
    records.append(record(now - 5, request_id="failed", status=502, error_kind="api_error"))
    setup.use_ledger(records)
    page.goto(f"http://127.0.0.1:{setup.port}/admin")
    sign_in(page, setup.admin_key)

    sync_api.expect(page.locator("#usage")).to_be_visible()
    for metric in ("requests", "tokens", "cost", "errors"):
        bars = page.locator(f"#chart-{metric} svg[data-metric='{metric}'] rect")
        sync_api.expect(bars.first).to_be_visible()
    requests_chart = page.locator("#chart-requests")
    sync_api.expect(requests_chart.locator(".legend span")).to_have_text(
        ["gpt-a", "gpt-c", "gpt-b"]  # most used first
    )
    # the bars' heights are drawn to scale: every bucket's stack fits the plot
    heights = requests_chart.locator("rect").evaluate_all(
        "rects => rects.map(r => parseFloat(r.getAttribute('height')))"
    )
    assert len(heights) >= 3 and max(heights) <= 144.5  # the plot is 144 units high
    assert page.locator("#chart-errors rect").count() == 1  # one failed request
    sync_api.expect(page.locator("#usage-total")).to_contain_text("25 requests")
    latest = page.locator("#requests tbody tr")
    sync_api.expect(latest).to_have_count(25)
    sync_api.expect(latest.nth(0)).to_have_attribute("data-request", "r0")  # newest first
    sync_api.expect(latest.nth(1).locator("td.status-bad")).to_have_text("502")
    screenshot(page, tmp_path, "admin-usage")

    page.select_option("#by", "key")
    sync_api.expect(requests_chart.locator(".legend span")).to_have_text(["app", "k1"])
    sync_api.expect(page.locator("#summary-group")).to_have_text("Key")
    page.select_option("#range", "1h")
    sync_api.expect(page.locator("#usage-total")).to_contain_text("25 requests")
    # minute buckets: one bar per request's minute and key
    sync_api.expect(requests_chart.locator("rect").nth(23)).to_be_attached()
    screenshot(page, tmp_path, "admin-usage-by-key")
    assert console_errors == []
    origin = f"http://127.0.0.1:{setup.port}/"
    assert all(url.startswith(origin) for url in requested), requested


def test_without_usage_the_page_says_why_and_still_shows_the_accounts(
    setup: AdminSetup, browser_page: tuple[Any, list[str], list[str]], tmp_path: Path
) -> None:
    page, _, _ = browser_page
    setup.gateway.admin.ledger = lambda: None
    page.goto(f"http://127.0.0.1:{setup.port}/admin")
    sign_in(page, setup.admin_key)
    sync_api.expect(page.locator("#accounts tbody tr[data-account]")).to_have_count(2)
    note = page.locator("#no-ledger")
    sync_api.expect(note).to_have_text("The usage ledger is off: no usage charts or request list.")
    sync_api.expect(page.locator("#usage")).to_be_hidden()
    sync_api.expect(page.locator("#latest")).to_be_hidden()
    screenshot(page, tmp_path, "admin-no-ledger")

    unreadable = setup.store.home / "not-a-ledger.db"
    unreadable.write_bytes(b"this is not a SQLite file" * 100)
    setup.gateway.admin.ledger = lambda: LedgerReader(unreadable)
    page.reload()
    sync_api.expect(note).to_contain_text(
        "Usage cannot be shown: the usage ledger cannot be read now"
    )
    sync_api.expect(page.locator("#accounts tbody tr[data-account]")).to_have_count(2)
    sync_api.expect(page.locator("#error")).to_be_empty()
