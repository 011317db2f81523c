"""``llm-gateway oauth start|status|refresh`` against a fake OAuth provider on 127.0.0.1.

The test plays the user: it runs ``oauth start``, "opens" the printed URL with
the fake provider (which checks the parameters and remembers the PKCE
challenge), and pastes the ``code#state`` back, in the same or a later process.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from conftest import PYTHON, CliResult, config_file, run_cli, subprocess_env
from test_oauth_fakes import (  # noqa: F401 (oauth_server is a fixture)
    CLIENT_ID,
    FALLBACK_PATH,
    HTML_403,
    REDIRECT_URI,
    TOKEN_PATH,
    FakeOAuthServer,
    assert_no_secrets,
    oauth_server,
    point_oauth_at,
    store_of,
)

from llm_gateway.cli.context import Context
from llm_gateway.cli.main import main
from llm_gateway.crypto.sealing import is_sealed, load_secret_key, unseal
from llm_gateway.oauth.records import token_context
from llm_gateway.pipeline.credentials import Credentials, oauth_token_context

SCOPES = "org:create_api_key user:profile user:inference"


def ok(*args: str, stdin: str = "") -> CliResult:
    result = run_cli(*args, stdin=stdin)
    assert result.code == 0, result.output
    return result


def failed(*args: str) -> CliResult:
    result = run_cli(*args)
    assert result.code == 1, result.output
    return result


def add_oauth_account(name: str = "max") -> str:
    view = ok("upstream", "add", "--type", "oauth", "--provider", "anthropic", "--name", name,
              "--json").json()  # fmt: skip
    account_id: str = view["id"]
    return account_id


@pytest.fixture
def account(home: Path, oauth_server: FakeOAuthServer) -> str:  # noqa: F811
    account_id = add_oauth_account()
    point_oauth_at(store_of(home), oauth_server)
    return account_id


def start(account_id: str) -> str:
    """``oauth start --json``; the authorisation URL it printed."""
    url: str = ok("oauth", "start", account_id, "--no-browser", "--json").json()["authorize_url"]
    return url


def oauth_section(home: Path, account_id: str) -> dict[str, Any]:
    import yaml

    document = yaml.safe_load(config_file(home).read_text())
    entry = next(e for e in document["upstream_accounts"] if e["id"] == account_id)
    section: dict[str, Any] = entry.get("oauth") or {}
    return section


def clear(home: Path, account_id: str, name: str) -> str:
    key = load_secret_key(home, {}, create=False)
    sealed = oauth_section(home, account_id)[name]
    assert is_sealed(sealed)
    return unseal(key, sealed, context=token_context(account_id, name))


# --- the authorisation URL and PKCE ---------------------------------------------------


def test_authorize_url_has_exactly_the_flow_parameters(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    url = start(account)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == oauth_server.base + "/oauth/authorize"
    params = parse_qsl(parts.query, strict_parsing=True)
    names = [name for name, _ in params]
    assert names == [
        "code", "client_id", "response_type", "redirect_uri", "scope",
        "code_challenge", "code_challenge_method", "state",
    ]  # fmt: skip
    values = dict(params)
    assert values["code"] == "true"
    assert values["client_id"] == CLIENT_ID
    assert values["response_type"] == "code"
    assert values["redirect_uri"] == REDIRECT_URI
    assert values["scope"] == SCOPES
    assert "%20" in parts.query and "+" not in parts.query  # scopes space-separated, %20
    assert values["code_challenge_method"] == "S256"
    assert len(values["code_challenge"]) == 43 and len(values["state"]) >= 43
    # the pending state and verifier are in the file, sealed
    section = oauth_section(home, account)
    assert is_sealed(section["pending_state"]) and is_sealed(section["pending_verifier"])
    assert clear(home, account, "pending_state") == values["state"]
    assert values["state"] not in config_file(home).read_text()


def test_every_start_makes_a_new_verifier_and_state(home: Path, account: str) -> None:
    first, second = (
        dict(parse_qsl(urlsplit(start(account)).query)),
        dict(parse_qsl(urlsplit(start(account)).query)),
    )
    assert first["state"] != second["state"]
    assert first["code_challenge"] != second["code_challenge"]


def test_code_exchange_sends_the_verifier_of_the_challenge_and_stores_sealed_tokens(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    url = start(account)
    pasted = oauth_server.authorize(url)
    result = ok("oauth", "start", account, "--code", pasted)
    assert result.out.startswith(f"Upstream account {account} is authorised.\n")
    assert "state:        authorised\n" in result.out
    (call,) = oauth_server.token_calls()
    assert call.path == TOKEN_PATH
    assert call.headers["content-type"] == "application/json"
    body = call.body
    code, state = pasted.split("#")
    assert set(body) == {
        "grant_type", "code", "state", "client_id", "redirect_uri", "code_verifier",
    }  # fmt: skip
    assert body["grant_type"] == "authorization_code"
    assert (body["code"], body["state"]) == (code, state)
    assert (body["client_id"], body["redirect_uri"]) == (CLIENT_ID, REDIRECT_URI)
    challenge = dict(parse_qsl(urlsplit(url).query))["code_challenge"]
    digest = hashlib.sha256(body["code_verifier"].encode("ascii")).digest()
    assert base64.urlsafe_b64encode(digest).decode().rstrip("=") == challenge
    assert 43 <= len(body["code_verifier"]) <= 128
    # stored sealed, bookkeeping set, pending cleared, nothing in the clear
    access, refresh = oauth_server.issued
    assert clear(home, account, "access_token") == access
    assert clear(home, account, "refresh_token") == refresh
    section = oauth_section(home, account)
    assert "pending_state" not in section and "pending_verifier" not in section
    assert abs(section["expires_at"] - (time.time() + 28800)) < 60
    assert abs(section["last_refresh"] - time.time()) < 60
    text = config_file(home).read_text()
    assert_no_secrets(text + result.output, oauth_server)
    assert body["code_verifier"] not in text
    # the request path's credential cache opens what the CLI stored
    config = store_of(home).load()
    stored = config.account_by_id(account)
    assert stored is not None and stored.oauth.refresh_token is not None
    assert Credentials(home, {}).for_account(stored) == access
    assert token_context(account, "access_token") == oauth_token_context(account, "access_token")
    assert token_context(account, "refresh_token") == oauth_token_context(account, "refresh_token")
    # upstream list shows it as usable
    (view,) = ok("upstream", "list", "--json").json()
    assert view["oauth"]["authorized"] is True


def test_a_callback_url_can_be_pasted_instead_of_code_and_state(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    code, state = oauth_server.authorize(start(account)).split("#")
    ok("oauth", "start", account, "--code", f"{REDIRECT_URI}?code={code}&state={state}")
    assert clear(home, account, "access_token") == oauth_server.issued[0]


def test_a_wrong_state_is_refused_and_nothing_is_stored(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    pasted = oauth_server.authorize(start(account))
    code = pasted.split("#")[0]
    before = config_file(home).read_bytes()
    result = failed("oauth", "start", account, "--code", f"{code}#not-the-state")
    assert result.err == (
        "error: the pasted code does not belong to the authorisation started last for account "
        f"{account} (state mismatch); nothing was stored. Paste the code shown for the latest "
        f"URL, or run 'llm-gateway oauth start {account}' again\n"
    )
    assert config_file(home).read_bytes() == before
    assert oauth_server.token_calls() == []
    # the pending authorisation is still there: the right code completes it
    ok("oauth", "start", account, "--code", pasted)
    assert oauth_server.token_calls()[0].body["code"] == code


def test_a_code_from_an_older_start_is_refused(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    old = oauth_server.authorize(start(account))
    start(account)
    assert "state mismatch" in failed("oauth", "start", account, "--code", old).err
    assert oauth_server.token_calls() == []


@pytest.mark.parametrize("pasted", ["just-a-code", "#state", "code#", "a#b#c", ""])
def test_malformed_codes_are_refused(account: str, pasted: str) -> None:
    start(account)
    result = failed("oauth", "start", account, "--code", pasted)
    assert result.err == (
        "error: expected the code as shown after login, in the form CODE#STATE "
        "(both parts, joined by '#')\n"
    )


def test_completing_without_a_started_authorisation_is_refused(account: str) -> None:
    result = failed("oauth", "start", account, "--code", "abc#def")
    assert result.err == (
        f"error: no authorisation in progress for account {account}: "
        f"run 'llm-gateway oauth start {account}' first\n"
    )


def test_a_refused_code_stores_nothing(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    pasted = oauth_server.authorize(start(account))
    ok("oauth", "start", account, "--code", pasted)
    tokens_before = oauth_section(home, account)["access_token"]
    # the same code again (after a new start, so the state matches): already used
    start(account)
    state = clear(home, account, "pending_state")
    result = failed("oauth", "start", account, "--code", f"{pasted.split('#')[0]}#{state}")
    assert result.err == (
        "error: the provider refused the code (invalid_grant): it may have expired or been "
        f"used already; run 'llm-gateway oauth start {account}' again\n"
    )
    assert oauth_section(home, account)["access_token"] == tokens_before


def test_the_fallback_token_url_is_used_when_the_primary_refuses(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    oauth_server.refuse[TOKEN_PATH] = HTML_403
    ok("oauth", "start", account, "--code", oauth_server.authorize(start(account)))
    assert [c.path for c in oauth_server.token_calls()] == [TOKEN_PATH, FALLBACK_PATH]
    assert clear(home, account, "access_token") == oauth_server.issued[0]


def test_start_and_completion_in_separate_processes(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "llm_gateway", "oauth", *args],
            env=subprocess_env(LLM_GATEWAY_HOME=str(home)),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = run("start", account, "--no-browser")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "Open this URL in a browser, log in and authorise:"
    url = lines[2]
    assert lines[-2:] == [
        "Then paste the code shown (CODE#STATE) into:",
        f"  {PYTHON} -m llm_gateway oauth start {account} --code 'CODE#STATE'",  # as run
    ]
    pasted = oauth_server.authorize(url)
    second = run("start", account, "--code", pasted)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith(f"Upstream account {account} is authorised.\n")
    assert clear(home, account, "refresh_token") == oauth_server.issued[1]
    assert_no_secrets(first.stdout + first.stderr + second.stdout + second.stderr, oauth_server)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_start_prompts_for_the_code(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    stdin = _Terminal()

    def fake_browser(url: str) -> bool:  # the user logs in; the code goes to stdin
        stdin.write(oauth_server.authorize(url) + "\n")
        stdin.seek(0)
        return True

    monkeypatch.setattr("webbrowser.open", fake_browser)
    environ = {"LLM_GATEWAY_HOME": str(home), "DISPLAY": ":0"}
    context = Context(store=store_of(home), environ=environ, stdout=out, stderr=out, stdin=stdin)
    assert main(["oauth", "start", account], context=context) == 0
    text = out.getvalue()
    assert "(A browser window was opened for you.)\n" in text
    assert "Paste the code shown after login (CODE#STATE): " in text
    assert f"Upstream account {account} is authorised.\n" in text
    assert clear(home, account, "access_token") == oauth_server.issued[0]
    assert_no_secrets(text, oauth_server)


@pytest.mark.parametrize(
    ("flags", "environ", "opened"),
    [
        ((), {"DISPLAY": ":0"}, True),
        (("--no-browser",), {"DISPLAY": ":0"}, False),
        ((), {}, False),  # no display: nothing to open a browser on
    ],
    ids=["display", "no-browser", "headless"],
)
def test_a_browser_is_opened_only_with_a_display_and_without_no_browser(
    home: Path,
    account: str,
    monkeypatch: pytest.MonkeyPatch,
    flags: tuple[str, ...],
    environ: dict[str, str],
    opened: bool,
) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    urls: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: urls.append(url) or True)
    env = {"DISPLAY": None, "WAYLAND_DISPLAY": None, **environ}
    result = run_cli("oauth", "start", account, "--json", *flags, env=env)
    view = json.loads(result.out)
    assert view["browser_opened"] is opened
    assert urls == ([view["authorize_url"]] if opened else [])


def test_a_wrong_secret_key_seals_nothing_beside_oauth_tokens(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The file holds OAuth secrets only (no API key to test a key against); a wrong
    # LLM_GATEWAY_SECRET_KEY must still not seal anything beside them.
    code = oauth_server.authorize(start(account))
    ok("oauth", "start", account, "--code", code)
    second = add_oauth_account("second")
    pending_code = oauth_server.authorize(start(second))
    before = config_file(home).read_bytes()
    monkeypatch.setenv("LLM_GATEWAY_SECRET_KEY", "ab" * 32)
    calls = len(oauth_server.token_calls())
    key = "sk-proj-" + "K" * 40

    refused = [
        failed("oauth", "start", second, "--no-browser", "--json"),
        failed("oauth", "start", second, "--code", pending_code),
        failed("upstream", "add", "--type=api-key", "--provider=openai", "--name=n", "--key", key),
    ]
    for result in refused:
        assert result.err.startswith("error: sealed value for "), result.err
        assert "cannot be decrypted: wrong secret key" in result.err
        assert result.err.endswith("; nothing was changed\n")
        assert "ab" * 32 not in result.output and key not in result.output
    assert config_file(home).read_bytes() == before
    assert len(oauth_server.token_calls()) == calls  # the pasted code was not spent

    monkeypatch.delenv("LLM_GATEWAY_SECRET_KEY")
    ok("oauth", "start", second, "--code", pending_code)
    assert clear(home, second, "access_token") == oauth_server.issued[-2]


# --- status and refresh ------------------------------------------------------------------


def authorise(account_id: str, fake: FakeOAuthServer) -> None:
    ok("oauth", "start", account_id, "--code", fake.authorize(start(account_id)))


def test_status_before_and_after_authorisation(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    view = ok("oauth", "status", account, "--json").json()
    assert view == {
        "id": account, "name": "max", "authorized": False, "needs_reauth": False,
        "expires_at": None, "expires_in": None, "last_refresh": None, "last_error": None,
        "pending": False, "account": None, "organization": None,
    }  # fmt: skip
    text = ok("oauth", "status", account).out
    assert text == (
        f"OAuth state of upstream account {account}:\n"
        f"account:      {account} (max)\n"
        "state:        not authorised\n"
        "signed in as: -\n"
        "organisation: -\n"
        "expires:      -\n"
        "last refresh: -\n"
        "last error:   -\n"
    )
    start(account)
    assert ok("oauth", "status", account, "--json").json()["pending"] is True
    authorise(account, oauth_server)
    view = ok("oauth", "status", account, "--json").json()
    assert view["authorized"] is True and view["pending"] is False
    assert 28800 - 60 < view["expires_in"] <= 28800
    assert view["account"] == {"uuid": "acc-1111", "email": "max@example.com"}
    assert view["organization"] == {"uuid": "org-2222", "name": "Max's Organization"}
    text = ok("oauth", "status", account).out
    assert "state:        authorised\n" in text
    assert "signed in as: max@example.com (acc-1111)\n" in text
    assert "organisation: Max's Organization (org-2222)\n" in text
    assert "(in 7h 59m)\n" in text or "(in 8h 0m)\n" in text
    assert_no_secrets(text, oauth_server)


def test_status_tells_two_subscriptions_apart_and_keeps_the_owner_over_refreshes(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    other = add_oauth_account("max-2")
    authorise(account, oauth_server)
    oauth_server.owner = {
        "account": {"uuid": "acc-3333", "email_address": "team@example.com"},
        "organization": {"uuid": "org-4444", "name": "Team\u001b[31m Org"},  # no escapes shown
    }
    authorise(other, oauth_server)
    first = ok("oauth", "status", account, "--json").json()
    second = ok("oauth", "status", other, "--json").json()
    assert first["account"]["email"] == "max@example.com"
    assert second["account"] == {"uuid": "acc-3333", "email": "team@example.com"}
    assert second["organization"] == {"uuid": "org-4444", "name": "Team[31m Org"}
    oauth_server.owner = None  # a refresh answer that does not say: the owner stays
    ok("oauth", "refresh", other)
    assert ok("oauth", "status", other, "--json").json()["account"] == second["account"]
    oauth_server.owner = {"account": {"uuid": "acc-5555", "email_address": "new@example.com"}}
    authorise(other, oauth_server)  # a new login: only what it says is shown
    again = ok("oauth", "status", other, "--json").json()
    assert again["account"] == {"uuid": "acc-5555", "email": "new@example.com"}
    assert again["organization"] is None


def test_refresh_now_rotates_and_persists_the_tokens(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    authorise(account, oauth_server)
    first_refresh = oauth_server.issued[1]
    result = ok("oauth", "refresh", account)
    assert result.out.startswith(f"Upstream account {account}: tokens refreshed.\n")
    (call,) = oauth_server.token_calls("refresh_token")
    assert call.body == {
        "grant_type": "refresh_token",
        "refresh_token": first_refresh,
        "client_id": CLIENT_ID,
    }
    assert clear(home, account, "access_token") == oauth_server.issued[2]
    assert clear(home, account, "refresh_token") == oauth_server.issued[3]
    ok("oauth", "refresh", account, "--json")
    assert (
        oauth_server.token_calls("refresh_token")[1].body["refresh_token"]
        == (oauth_server.issued[3])
    )
    assert_no_secrets(result.output + config_file(home).read_text(), oauth_server)


def test_refresh_with_a_revoked_token_marks_the_account_for_reauthorisation(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    authorise(account, oauth_server)
    oauth_server.revoke()
    result = failed("oauth", "refresh", account)
    assert result.err == (
        f"error: upstream account {account} needs re-authorisation: the provider refused its "
        f"refresh token (invalid_grant); run 'llm-gateway oauth start {account}'\n"
    )
    view = ok("oauth", "status", account, "--json").json()
    assert view["needs_reauth"] is True and view["authorized"] is False
    assert view["last_error"] == (
        "the refresh token was refused (invalid_grant); authorise again with 'oauth start'"
    )
    assert "state:        needs re-authorisation" in ok("oauth", "status", account).out
    (listed,) = ok("upstream", "list", "--json").json()
    assert listed["oauth"]["needs_reauth"] is True
    assert_no_secrets(result.output + config_file(home).read_text(), oauth_server)
    # authorising again brings it back
    authorise(account, oauth_server)
    view = ok("oauth", "status", account, "--json").json()
    assert view["authorized"] is True and view["last_error"] is None


def test_refresh_failure_is_recorded_as_last_error(
    home: Path,
    account: str,
    oauth_server: FakeOAuthServer,  # noqa: F811
) -> None:
    authorise(account, oauth_server)
    oauth_server.refuse[TOKEN_PATH] = (500, "application/json", b'{"error": "server_error"}')
    oauth_server.refuse[FALLBACK_PATH] = oauth_server.refuse[TOKEN_PATH]
    result = failed("oauth", "refresh", account)
    assert result.err == (
        "error: the refresh failed: the token endpoint answered 500 (server_error)\n"
    )
    view = ok("oauth", "status", account, "--json").json()
    assert view["last_error"] == "the token endpoint answered 500 (server_error)"
    assert view["authorized"] is True and view["needs_reauth"] is False


def test_refresh_before_authorisation_is_refused(account: str) -> None:
    assert failed("oauth", "refresh", account).err == (
        f"error: upstream account {account} is not authorised yet: "
        f"run 'llm-gateway oauth start {account}'\n"
    )


@pytest.mark.parametrize("action", ["start", "status", "refresh"])
def test_only_oauth_accounts_are_accepted(home: Path, action: str) -> None:
    view = ok("upstream", "add", "--type", "api-key", "--provider", "anthropic", "--name", "k",
              "--key", "sk-ant-api03-" + "x" * 40, "--json").json()  # fmt: skip
    before = config_file(home).read_bytes()
    result = failed("oauth", action, view["id"])
    assert result.err == (
        f"error: upstream account {view['id']} is an api-key account; "
        "oauth commands apply to accounts added with --type oauth\n"
    )
    assert config_file(home).read_bytes() == before
    result = failed("oauth", action, "up-nothere")
    assert result.err == (
        "error: no upstream account with id or name 'up-nothere' (see 'llm-gateway upstream list')\n"
    )


def test_the_readme_says_a_subscriptions_terms_may_not_allow_a_gateway() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Claude subscriptions (OAuth accounts)")[1].split("\n## ")[0]
    before_the_commands = " ".join(section.split("```")[0].split())
    assert "A provider's terms may not allow a subscription to be used through a gateway" in (
        before_the_commands
    )
    assert "decide for yourself whether to use a subscription this way" in before_the_commands
