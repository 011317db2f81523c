"""The admin endpoints over HTTP: who may use them, what they show (and never
show), and account toggles that go through the config store like the CLI's."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_gateway import BROKEN_KEY, HEALTHY_KEY, AdminSetup, admin_gateway
from conftest import PYTHON, run_cli, subprocess_env
from fake_upstream import clear_proxy_environment

from llm_gateway.admin.page import content_security_policy, page_html

API_PATHS = ("/admin/api/status", "/admin/api/accounts", "/admin/api/keys")


@pytest.fixture
def setup(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminSetup]:
    clear_proxy_environment(monkeypatch)
    with admin_gateway(home) as running:
        yield running


def error_of(raw: bytes) -> dict[str, object]:
    body = json.loads(raw)
    assert set(body) == {"error"}, body  # OpenAI's error shape
    error: dict[str, object] = body["error"]
    return error


# --- who may read --------------------------------------------------------------------


def test_the_api_refuses_a_missing_key_a_wrong_key_and_a_key_without_admin(
    setup: AdminSetup,
) -> None:
    for path in API_PATHS:
        status, _, raw = setup.call("GET", path, None)
        assert status == 401 and "missing API key" in str(error_of(raw)["message"])
        status, _, raw = setup.call("GET", path, setup.admin_key[:-4] + "0000")
        assert status == 401 and error_of(raw)["message"] == "invalid API key"
        status, _, raw = setup.call("GET", path, setup.user_key)
        assert status == 403
        assert error_of(raw)["message"] == "this API key lacks the 'admin' permission"
    status, _, raw = setup.call(
        "POST",
        "/admin/api/accounts/enabled",
        setup.user_key,
        {"id": setup.broken, "enabled": False},
    )
    assert status == 403
    assert setup.store.load().account_by_id(setup.broken).enabled  # nothing written


def test_an_admin_key_reads_status_accounts_and_keys(setup: AdminSetup) -> None:
    status = setup.json("GET", "/admin/api/status", setup.admin_key)
    assert status["config"] == "ok" and status["upstream_accounts"] == 2
    assert status["config_path"].endswith("config.yaml")
    accounts = setup.json("GET", "/admin/api/accounts", setup.admin_key)["accounts"]
    assert [a["name"] for a in accounts] == ["broken", "healthy"]
    assert all(a["state"] == "healthy" and a["circuit"] == "closed" for a in accounts)
    keys = setup.json("GET", "/admin/api/keys", setup.admin_key)["keys"]
    by_name = {k["name"]: k for k in keys}
    assert by_name["ops"]["permissions"] == ["admin"]
    assert by_name["app"]["rpm"] == 60 and by_name["app"]["tpm"] is None


# --- what it shows -------------------------------------------------------------------


def test_a_failing_account_shows_its_open_circuit_and_cooldown(setup: AdminSetup) -> None:
    setup.break_the_first_account()
    broken = setup.account(setup.broken)
    assert broken["state"] == "circuit open"
    assert broken["circuit"] == "open" and broken["available"] is False
    assert broken["failures"] == 1 and broken["last_error"] == "server_error"
    assert broken["circuit_open_s"] is not None and broken["circuit_open_s"] > 0
    healthy = setup.account(setup.healthy)
    assert healthy["state"] == "healthy" and healthy["successes"] == 1


def test_no_secret_ever_appears_in_the_admin_api(setup: AdminSetup) -> None:
    setup.break_the_first_account()
    document = setup.store.read_document()
    secrets = [BROKEN_KEY, HEALTHY_KEY, setup.admin_key, setup.user_key]
    secrets += [k["hash"] for k in document["gateway_keys"]]
    secrets += [a["api_key"] for a in document["upstream_accounts"]]
    for path in API_PATHS:
        _, _, raw = setup.call("GET", path, setup.admin_key)
        text = raw.decode()
        for secret in secrets:
            assert secret not in text, path
        assert '"hash"' not in text and '"api_key"' not in text


# --- writes --------------------------------------------------------------------------


def test_disabling_from_the_api_is_what_the_cli_sees_and_is_served_at_once(
    setup: AdminSetup,
) -> None:
    answer = setup.json(
        "POST",
        "/admin/api/accounts/enabled",
        setup.admin_key,
        {"id": setup.healthy, "enabled": False},
    )
    assert answer == {"id": setup.healthy, "enabled": False, "applied": True}
    assert setup.gateway.state.config.account_by_id(setup.healthy).enabled is False
    shown = run_cli("upstream", "show", setup.healthy, "--json").json()
    assert shown["enabled"] is False
    assert setup.account(setup.healthy)["state"] == "disabled"
    # and back: enabling stamps enabled_at, as ``upstream enable`` does
    setup.json(
        "POST",
        "/admin/api/accounts/enabled",
        setup.admin_key,
        {"id": setup.healthy, "enabled": True},
    )
    assert run_cli("upstream", "show", setup.healthy, "--json").json()["enabled"] is True
    entry = next(
        a for a in setup.store.read_document()["upstream_accounts"] if a["id"] == setup.healthy
    )
    assert entry["enabled_at"]


def test_page_writes_and_cli_writes_at_the_same_time_all_survive(setup: AdminSetup) -> None:
    """The CLI in separate processes adds keys while the page flips an account."""
    env = subprocess_env(LLM_GATEWAY_HOME=str(setup.store.home), LOG_LEVEL="warning")
    adding = [
        subprocess.Popen(
            [PYTHON, "-m", "llm_gateway", "apikey", "add", "--name", f"cli-{i}", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    flips = [False, True] * 3 + [False]
    for enabled in flips:
        answer = setup.json(
            "POST",
            "/admin/api/accounts/enabled",
            setup.admin_key,
            {"id": setup.broken, "enabled": enabled},
        )
        assert answer["applied"] is True
    added = []
    for process in adding:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        added.append(json.loads(out)["id"])
    document = setup.store.read_document()
    assert set(added) <= {k["id"] for k in document["gateway_keys"]}
    assert [a["enabled"] for a in document["upstream_accounts"]] == [False, True]
    shown = run_cli("upstream", "show", setup.broken, "--json").json()
    assert shown["enabled"] is False


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"not json", 400, "not valid JSON"),
        (b"[1]", 400, "must be a JSON object"),
        (b'{"enabled": false}', 400, "'id' must be"),
        (b'{"id": "up-x", "enabled": "no"}', 400, "'enabled' must be true or false"),
        (b'{"id": "up-nosuch", "enabled": false}', 404, "no upstream account with id 'up-nosuch'"),
    ],
)
def test_a_bad_toggle_is_a_clear_error_and_writes_nothing(
    setup: AdminSetup, body: bytes, status: int, fragment: str
) -> None:
    before = setup.store.read_document()
    conn_status, _, raw = _post_raw(setup, body)
    assert conn_status == status
    assert fragment in str(error_of(raw)["message"])
    assert setup.store.read_document() == before


def _post_raw(setup: AdminSetup, body: bytes) -> tuple[int, dict[str, str], bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", setup.port, timeout=20)
    try:
        conn.request(
            "POST",
            "/admin/api/accounts/enabled",
            body=body,
            headers={"authorization": f"Bearer {setup.admin_key}"},
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# --- the page ------------------------------------------------------------------------


def test_the_page_is_served_self_contained_with_a_strict_policy(setup: AdminSetup) -> None:
    status, headers, raw = setup.call("GET", "/admin", None)
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert raw == page_html()
    html = raw.decode()
    # nothing loaded from elsewhere: no src/href to another host, no import
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    policy = headers["content-security-policy"]
    assert policy == content_security_policy(html)
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+';", policy)
    assert headers["cache-control"] == "no-store" and headers["x-frame-options"] == "DENY"


def test_the_page_never_puts_the_key_in_a_url() -> None:
    html = page_html().decode()
    assert "sessionStorage" in html and "localStorage" not in html
    assert "?key=" not in html and "location.hash" not in html


def test_the_page_polling_writes_no_access_line_and_a_toggle_writes_one(
    setup: AdminSetup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llm_gateway.access")
    for path in ("/admin", *API_PATHS):
        setup.call("GET", path, setup.admin_key)
    setup.json(
        "POST",
        "/admin/api/accounts/enabled",
        setup.admin_key,
        {"id": setup.broken, "enabled": False},
    )
    setup.call("GET", "/v1/models", setup.user_key)
    lines = [r for r in caplog.records if r.name == "llm_gateway.access"]
    assert [(r.method, r.path) for r in lines] == [  # type: ignore[attr-defined]
        ("POST", "/admin/api/accounts/enabled"),
        ("GET", "/v1/models"),
    ]
    assert lines[0].key_id == setup.admin_key_id  # type: ignore[attr-defined]
    text = "\n".join(str(r.__dict__) for r in caplog.records)
    assert setup.admin_key not in text and setup.user_key not in text
