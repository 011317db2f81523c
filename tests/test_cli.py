"""The ``llm-gateway`` command line, as a user sees it: what each command prints,
what it exits with, what it writes, and which secrets it never shows.

Commands are written as a user would type them (``ok("apikey add --name x")``,
split like a shell does); ``ok`` expects exit 0, ``failed`` exit 1 by default.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shlex
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PYTHON,
    CliResult,
    config_file,
    free_port,
    gateway_in_thread,
    point_config_at,
    run_cli,
    subprocess_env,
)

from llm_gateway import __version__
from llm_gateway.cli.main import build_parser
from llm_gateway.cli.upstream_cmd import api_key_context
from llm_gateway.config.accounts import Quirks
from llm_gateway.config.schema import Config
from llm_gateway.config.store import ConfigStore
from llm_gateway.crypto.gateway_keys import hash_key, parse_key_id, verify_key
from llm_gateway.crypto.sealing import is_sealed, load_secret_key, unseal
from llm_gateway.providers.registry import PROVIDERS

ANTHROPIC_KEY = "sk-ant-api03-" + "Q7x" * 12 + "TAIL"
OPENAI_KEY = "sk-proj-" + "m2Zp" * 10 + "WXYZ"
GATEWAY_KEY = re.compile(r"lgw-[0-9a-f]{8}-[A-Za-z0-9_-]{43}")
OTHER_SECRET_KEY = "ab" * 32
NO_KEY_ERROR = "no gateway key with id or name 'deadbeef' (see 'llm-gateway apikey list')"
NO_ACCOUNT_ERROR = (
    "no upstream account with id or name 'up-nothere' (see 'llm-gateway upstream list')"
)
CANNOT_DECRYPT = "(sealed: cannot decrypt with this secret key)"


def cli(command: str, *extra: str, stdin: str = "") -> CliResult:
    return run_cli(*shlex.split(command), *extra, stdin=stdin)


def ok(command: str, *extra: str, stdin: str = "") -> CliResult:
    result = cli(command, *extra, stdin=stdin)
    assert result.code == 0, result.output
    return result


def failed(command: str, *extra: str, code: int = 1, stdin: str = "") -> CliResult:
    result = cli(command, *extra, stdin=stdin)
    assert result.code == code, result.output
    return result


def stored(home: Path) -> Config:
    """What the config file holds now (the defaults while there is none)."""
    return ConfigStore(config_file(home)).load(create=False)


def add_upstream(options: str = "", key: str = ANTHROPIC_KEY) -> dict[str, Any]:
    """``upstream add`` of an anthropic api-key account named main; its JSON view."""
    command = f"upstream add --type api-key --provider anthropic --name main {options} --json"
    view: dict[str, Any] = ok(command, "--key", key).json()
    return view


@pytest.fixture
def quiet_port(home: Path) -> int:
    """A config whose server address is a loopback port nothing listens on."""
    port = free_port()
    point_config_at(ConfigStore(config_file(home)), port)
    return port


# --- version, help, usage -----------------------------------------------------


def test_version(home: Path) -> None:
    assert ok("--version").out == f"llm-gateway {__version__}\n"


def _command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += _command_paths(sub, (*prefix, name))
    return paths


COMMAND_PATHS = _command_paths(build_parser())


def test_the_command_tree_has_every_documented_command() -> None:
    expected = {
        "server start", "server status", "status", "health",
        "env list", "env set", "env show", "env unset",
        "oauth start", "oauth status", "oauth refresh",
    }  # fmt: skip
    for group in ("apikey", "upstream"):
        for action in ("add", "list", "show", "update", "remove", "enable", "disable"):
            expected.add(f"{group} {action}")
    assert expected <= {" ".join(p) for p in COMMAND_PATHS}


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "top")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_at_every_level_exits_0(home: Path, path: tuple[str, ...], flag: str) -> None:
    result = run_cli(*path, flag)
    assert result.code == 0
    assert result.out.startswith("usage: llm-gateway" + "".join(f" {p}" for p in path))
    assert not home.exists()  # asking for help creates nothing


@pytest.mark.parametrize(
    "command",
    [
        "",
        "frobnicate",
        "apikey",
        "apikey add",  # --name is required
        "apikey add --name x --permissions root",
        "apikey add --name x --permissions ''",
        "apikey add --name x --expires 'next tuesday'",
        "apikey add --name x --rpm -5",
        "apikey add --name x --tpm lots",
        "apikey show",
        "apikey list --bogus",
        "upstream add --type api-key --name x",  # no --provider
        "upstream add --type token --provider openai --name x",
        "upstream add --type api-key --provider bedrock --name x",
        "upstream add --type api-key --provider openai --name x --model-map gpt-4o",
        "upstream add --type api-key --provider openai --name x --header no-equals-sign",
        "upstream add --type api-key --provider openai --name x --priority high",
        "upstream remove",
        "env show",
        "env show --name ftp_proxy",
        "server start --port 99999",
        "server start --port http",
        "health --timeout soon",
        "oauth start",
    ],
    ids=lambda c: c or "nothing",
)
def test_usage_errors_exit_2_and_say_what_is_wrong(home: Path, command: str) -> None:
    result = failed(command, code=2)
    assert "usage: llm-gateway" in result.err
    assert "error:" in result.err
    assert result.out == ""
    assert not home.exists()  # nothing was created or changed


def test_entry_point_runs_as_a_module(home: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "llm_gateway", *args],
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )

    usage = run("apikey", "list", "--bogus")
    assert usage.returncode == 2
    assert "unrecognized arguments: --bogus" in usage.stderr
    missing = run("apikey", "show", "deadbeef")
    assert missing.returncode == 1
    # the hint names the command as it was run
    hint = NO_KEY_ERROR.replace("llm-gateway", shlex.join([PYTHON, "-m", "llm_gateway"]))
    assert missing.stderr == f"error: {hint}\n"


# --- apikey -------------------------------------------------------------------


def test_apikey_add_prints_the_key_once_and_stores_only_its_hash(home: Path) -> None:
    lines = ok("apikey add --name laptop").out.splitlines()
    key_id = lines[0].removeprefix("Created gateway key ").split(" ")[0]
    assert lines[0] == f"Created gateway key {key_id} (laptop)."
    key = lines[1].removeprefix("Key: ")
    assert GATEWAY_KEY.fullmatch(key) and parse_key_id(key) == key_id
    assert lines[2:] == ["Store it now: it is shown only this once."]
    text = config_file(home).read_text()
    assert key not in text and key.split("-", 2)[2] not in text
    [entry] = stored(home).gateway_keys
    assert (entry.id, entry.name) == (key_id, "laptop")
    assert entry.hash == hash_key(key) and verify_key(key, entry.hash)
    assert entry.permissions == ("read", "write")
    assert entry.enabled and entry.expires_at is None


def test_apikey_add_json(home: Path) -> None:
    view = ok("apikey add --name ci --json").json()
    assert set(view) == {
        "id", "name", "permissions", "enabled", "created_at", "expires_at",
        "models", "rpm", "tpm", "budget", "budget_period", "key",
    }  # fmt: skip
    assert GATEWAY_KEY.fullmatch(view["key"]) and parse_key_id(view["key"]) == view["id"]
    assert view["permissions"] == ["read", "write"] and view["enabled"] is True
    created = datetime.strptime(view["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    age = datetime.now(timezone.utc) - created.replace(tzinfo=timezone.utc)
    assert abs(age) < timedelta(minutes=5)
    assert stored(home).key_by_id(view["id"]) is not None


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_apikey_add_with_every_setting(home: Path, form: str) -> None:
    settings = [
        ("--name", "batch"),
        ("--permissions", "read,admin"),
        ("--models", "gpt-4o*, claude-*"),
        ("--expires", "2031-02-03"),
        ("--rpm", "60"),
        ("--tpm", "100000"),
    ]
    args = [a for f, v in settings for a in ([f, v] if form == "separate" else [f"{f}={v}"])]
    view = ok("apikey add --json", *args).json()
    assert view["name"] == "batch"
    assert view["permissions"] == ["read", "admin"]
    assert view["models"] == ["gpt-4o*", "claude-*"]
    assert view["expires_at"] == "2031-02-03T00:00:00Z"
    assert (view["rpm"], view["tpm"]) == (60, 100000)
    key = stored(home).key_by_id(view["id"])
    assert key is not None
    assert key.permissions == ("read", "admin") and key.models == ("gpt-4o*", "claude-*")
    assert (key.rpm, key.tpm, key.expires_at) == (60, 100000, "2031-02-03T00:00:00Z")


def test_apikey_relative_expiry(home: Path) -> None:
    view = ok("apikey add --name temp --expires 30d --json").json()
    expires = datetime.strptime(view["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    delta = expires.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)
    assert timedelta(days=29) < delta <= timedelta(days=30)


def test_apikey_list_and_show_never_print_the_key_or_its_hash(home: Path) -> None:
    assert ok("apikey list").out == (
        "No gateway keys. Create one with: llm-gateway apikey add --name NAME\n"
    )
    added = ok("apikey add --name ci --rpm 5 --json").json()
    ok("apikey add --name second --permissions read")
    key, key_id = added["key"], added["id"]
    stored_hash = stored(home).gateway_keys[0].hash
    outputs = [
        ok("apikey list"),
        ok("apikey list --json"),
        ok(f"apikey show {key_id}"),
        ok(f"apikey show {key_id} --json"),
        ok(f"apikey disable {key_id}"),
        ok(f"apikey enable {key_id} --json"),
        ok(f"apikey update {key_id} --name ci-renamed"),
        ok(f"apikey update {key_id} --tpm 9 --json"),
        failed("status --json"),  # no gateway runs: exit 1
    ]
    for result in outputs:
        assert key not in result.output
        assert stored_hash not in result.output and "sha256:" not in result.output
    table = outputs[0].out.splitlines()
    assert table[0].split() == ["ID", "NAME", "PERMISSIONS", "STATE", "EXPIRES", "MODELS", "LIMITS"]
    assert table[1].split() == [key_id, "ci", "read,write", "enabled", "never", "*", "5", "rpm"]
    assert table[2].split()[1:5] == ["second", "read", "enabled", "never"]
    listed = outputs[1].json()
    assert [k["id"] for k in listed] == [key_id, stored(home).gateway_keys[1].id]
    assert all("key" not in k and "hash" not in k for k in listed)
    shown = outputs[2].out.splitlines()
    assert shown[:2] == [f"id:          {key_id}", "name:        ci"]
    assert "rpm:         5" in shown and "expires_at:  -" in shown
    assert outputs[3].json() == listed[0]


def test_apikey_update(home: Path) -> None:
    key_id = ok("apikey add --name a --rpm 10 --expires 1d --json").json()["id"]
    command = f"apikey update {key_id} --name=b --permissions write --rpm none --expires=never"
    view = ok(command, "--models", "gpt-*", "--json").json()
    assert view["name"] == "b" and view["permissions"] == ["write"]
    assert view["rpm"] is None and view["expires_at"] is None and view["models"] == ["gpt-*"]
    key = stored(home).key_by_id(key_id)
    assert key is not None
    assert (key.name, key.permissions, key.rpm, key.expires_at) == ("b", ("write",), None, None)
    shown = ok(f"apikey update {key_id} --tpm 7").out.splitlines()
    assert "tpm:         7" in shown and "name:        b" in shown
    assert stored(home).gateway_keys[0].tpm == 7


def test_apikey_disable_enable_remove(home: Path) -> None:
    key_id = ok("apikey add --name a --json").json()["id"]
    assert ok(f"apikey disable {key_id}").out == f"Gateway key {key_id} disabled.\n"
    assert stored(home).gateway_keys[0].enabled is False
    assert " disabled " in ok("apikey list").out
    assert ok(f"apikey enable {key_id}").out == f"Gateway key {key_id} enabled.\n"
    assert stored(home).gateway_keys[0].enabled is True
    assert ok(f"apikey disable {key_id} --json").json()["enabled"] is False
    assert ok(f"apikey remove {key_id}").out == f"Gateway key {key_id} removed.\n"
    assert stored(home).gateway_keys == ()
    other = ok("apikey add --name b --json").json()["id"]
    assert ok(f"apikey remove {other} --json").json() == {"id": other, "removed": True}


@pytest.mark.parametrize(
    "command",
    [
        "show deadbeef",
        "show deadbeef --json",
        "update deadbeef --name x",
        "remove deadbeef",
        "disable deadbeef",
        "enable deadbeef --json",
    ],
)
def test_apikey_unknown_id(home: Path, command: str) -> None:
    ok("apikey add --name existing")
    before = config_file(home).read_bytes()
    result = failed(f"apikey {command}")
    assert (result.out, result.err) == ("", f"error: {NO_KEY_ERROR}\n")
    assert config_file(home).read_bytes() == before


# --- upstream -----------------------------------------------------------------


def test_upstream_add_anthropic_api_key(home: Path) -> None:
    result = ok("upstream add --type api-key --provider anthropic --name work --key", ANTHROPIC_KEY)
    [account] = stored(home).upstream_accounts
    assert re.fullmatch(r"up-[0-9a-f]{8}", account.id)
    assert result.out == f"Added upstream account {account.id} (work, anthropic).\n"
    assert (account.type, account.provider, account.name) == ("api-key", "anthropic", "work")
    assert account.models == ("claude-*",)  # the provider's default
    assert account.api_key is not None and is_sealed(account.api_key)
    assert (account.priority, account.weight) == (0, 1)
    assert account.enabled and account.verify_tls


def test_upstream_add_openai_json_view(home: Path) -> None:
    command = "upstream add --type=api-key --provider=openai --name=oa --json"
    view = ok(command, f"--key={OPENAI_KEY}").json()
    assert view["provider"] == "openai"
    assert view["base_url"] == "https://api.openai.com/v1"
    assert "gpt-*" in view["models"]
    assert view["key"] == "sk-proj-…WXYZ"
    assert view["enabled"] is True and view["verify_tls"] is True
    assert "oauth" not in view


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_upstream_add_with_every_setting(home: Path, form: str) -> None:
    settings = [
        ("--type", "api-key"),
        ("--provider", "openai-compatible"),
        ("--name", "local llama"),
        ("--key", "local-key-0123456789"),
        ("--base-url", "http://127.0.0.1:8000/v1"),
        ("--models", "llama-*,qwen-*"),
        ("--model-map", "gpt-4o=llama-3.1-70b, fast=qwen-7b"),
        ("--priority", "-1"),
        ("--weight", "3"),
        ("--header", "X-Org=acme"),
        ("--header", "X-Team = ml "),
    ]
    args = [a for f, v in settings for a in ([f, v] if form == "separate" else [f"{f}={v}"])]
    flags = "upstream add --no-verify-tls --no-developer-role --max-completion-tokens --json"
    view = ok(flags, *args).json()
    assert view["base_url"] == "http://127.0.0.1:8000/v1"
    assert view["models"] == ["llama-*", "qwen-*"]
    assert view["model_map"] == {"gpt-4o": "llama-3.1-70b", "fast": "qwen-7b"}
    assert (view["priority"], view["weight"], view["verify_tls"]) == (-1, 3, False)
    assert view["quirks"] == {
        "developer_role": False,
        "max_completion_tokens": True,
        "extra_headers": {"x-org": "acme", "x-team": "ml"},
    }
    [account] = stored(home).upstream_accounts
    assert account.name == "local llama"
    assert account.model_map == (("gpt-4o", "llama-3.1-70b"), ("fast", "qwen-7b"))
    assert account.upstream_model("fast") == "qwen-7b"
    assert account.quirks == Quirks(
        developer_role=False,
        max_completion_tokens=True,
        extra_headers=(("x-org", "acme"), ("x-team", "ml")),
    )
    assert account.verify_tls is False


def test_upstream_openai_compatible_needs_a_base_url(home: Path) -> None:
    result = failed(
        "upstream add --type api-key --provider openai-compatible --name x --key k-0123456789abc"
    )
    assert result.err == "error: provider 'openai-compatible' needs --base-url\n"
    assert stored(home).upstream_accounts == ()


RESERVED = [name for name, provider in PROVIDERS.items() if provider.reserved]


@pytest.mark.parametrize("provider", RESERVED)
def test_reserved_providers_are_not_offered(home: Path, provider: str) -> None:
    assert provider not in ok("upstream add --help").out
    command = f"upstream add --type api-key --provider {provider} --name x --key k-0123456789abc"
    result = failed(command, code=2)
    assert "argument --provider: invalid choice:" in result.err
    choices = result.err.partition("choose from")[2]
    assert "openai-compatible" in choices and provider not in choices
    assert "k-0123456789abc" not in result.output
    assert stored(home).upstream_accounts == ()
    account_id = add_upstream()["id"]
    result = failed(f"upstream update {account_id} --provider {provider}", code=2)
    assert "invalid choice" in result.err
    assert stored(home).upstream_accounts[0].provider == "anthropic"


def test_upstream_api_key_account_needs_a_key(home: Path) -> None:
    result = failed("upstream add --type api-key --provider openai --name x")
    assert result.err == (
        "error: an api-key account needs --key (use --key - to read it from stdin)\n"
    )
    result = failed("upstream add --type api-key --provider openai --name x --key -", stdin="\n")
    assert result.err == "error: the API key is empty\n"
    assert stored(home).upstream_accounts == ()


def test_upstream_weight_must_be_positive(home: Path) -> None:
    command = "upstream add --type api-key --provider openai --name x --weight 0 --key"
    assert failed(command, OPENAI_KEY).err == "error: --weight must be at least 1\n"
    assert stored(home).upstream_accounts == ()


def test_upstream_oauth_account(home: Path) -> None:
    result = ok("upstream add --type oauth --provider anthropic --name max")
    [account] = stored(home).upstream_accounts
    assert result.out.splitlines() == [
        f"Added upstream account {account.id} (max, anthropic).",
        f"Authorise it with: llm-gateway oauth start {account.id}",
    ]
    assert account.type == "oauth" and account.api_key is None
    view = ok(f"upstream show {account.id} --json").json()
    assert view["key"] is None
    assert view["oauth"] == {"authorized": False, "expires_at": None, "needs_reauth": False}
    start = f"needs oauth start: llm-gateway oauth start {account.id}"
    assert f"state:       {start}" in ok(f"upstream show {account.id}").out
    assert start in ok("upstream list").out.splitlines()[1]


def test_upstream_oauth_refusals(home: Path) -> None:
    command = "upstream add --type oauth --provider anthropic --name x --key"
    result = failed(command, ANTHROPIC_KEY)
    assert "oauth accounts take no --key" in result.err
    assert ANTHROPIC_KEY not in result.output
    result = failed("upstream add --type oauth --provider openai --name x")
    assert result.err == "error: oauth accounts are supported for provider 'anthropic' only\n"
    assert stored(home).upstream_accounts == ()


def test_upstream_list_and_show(home: Path) -> None:
    assert ok("upstream list").out == (
        "No upstream accounts. Add one with: llm-gateway upstream add --help\n"
    )
    first = add_upstream("--priority 2")
    second = add_upstream("--name backup", key=OPENAI_KEY)
    table = ok("upstream list").out.splitlines()
    assert table[0].split() == [
        "ID", "NAME", "PROVIDER", "TYPE", "STATE", "HEALTH", "PRIORITY", "WEIGHT", "MODELS", "KEY",
    ]  # fmt: skip
    assert table[1].split() == [
        first["id"], "main", "anthropic", "api-key", "enabled", "n/a", "2", "1", "claude-*",
        "sk-ant-…TAIL",
    ]  # fmt: skip
    assert table[2].split()[:2] == [second["id"], "backup"]
    listed = ok("upstream list --json").json()
    assert [v["id"] for v in listed] == [first["id"], second["id"]]
    shown = ok(f"upstream show {first['id']}").out.splitlines()
    assert f"id:          {first['id']}" in shown
    assert "key:         sk-ant-…TAIL" in shown
    assert "base_url:    https://api.anthropic.com" in shown
    assert "state:       enabled" in shown
    assert ok(f"upstream show {first['id']} --json").json() == listed[0]


def test_upstream_update(home: Path) -> None:
    account_id = add_upstream()["id"]
    command = (
        f"upstream update {account_id} --name renamed --models=claude-3-* --weight 4"
        " --priority=5 --verify-tls --header x-a=1 --json"
    )
    updated = ok(command).json()
    assert updated["name"] == "renamed" and updated["models"] == ["claude-3-*"]
    assert (updated["weight"], updated["priority"]) == (4, 5)
    assert updated["quirks"] == {"extra_headers": {"x-a": "1"}}
    assert updated["key"] == "sk-ant-…TAIL"  # an update without --key keeps the key
    [account] = stored(home).upstream_accounts
    assert (account.name, account.weight, account.priority) == ("renamed", 4, 5)
    assert "type cannot change" in failed(f"upstream update {account_id} --type oauth").err


def test_upstream_disable_enable_remove(home: Path) -> None:
    account_id = add_upstream()["id"]
    assert ok(f"upstream disable {account_id}").out == (
        f"Upstream account {account_id} disabled.\n"
    )
    assert stored(home).upstream_accounts[0].enabled is False
    assert " disabled " in ok("upstream list").out
    assert "state:       disabled" in ok(f"upstream show {account_id}").out
    assert ok(f"upstream enable {account_id} --json").json()["enabled"] is True
    assert stored(home).upstream_accounts[0].enabled is True
    assert ok(f"upstream remove {account_id} --json").json() == {
        "id": account_id,
        "removed": True,
    }
    assert stored(home).upstream_accounts == ()
    other = add_upstream()["id"]
    assert ok(f"upstream remove {other}").out == f"Upstream account {other} removed.\n"


@pytest.mark.parametrize(
    "command",
    [
        "show up-nothere",
        "update up-nothere --name x",
        "update up-nothere --key sk-new-key-0123456789",
        "remove up-nothere",
        "disable up-nothere --json",
        "enable up-nothere",
    ],
)
def test_upstream_unknown_id(home: Path, command: str) -> None:
    add_upstream()
    before = config_file(home).read_bytes()
    result = failed(f"upstream {command}")
    assert (result.out, result.err) == ("", f"error: {NO_ACCOUNT_ERROR}\n")
    assert config_file(home).read_bytes() == before


# --- secrets ------------------------------------------------------------------


def secret_key(home: Path) -> bytes:
    return load_secret_key(home, {}, create=False)


@pytest.mark.parametrize("via", ["argument", "stdin"])
def test_upstream_key_is_sealed_and_only_ever_shown_masked(home: Path, via: str) -> None:
    plaintext = "sk-ant-api03-" + secrets.token_urlsafe(30) + "Zq9x"
    command = "upstream add --type api-key --provider anthropic --name s --key"
    if via == "argument":
        added = ok(command, plaintext)
    else:
        added = ok(command, "-", stdin=plaintext + "\n")
    [account] = stored(home).upstream_accounts
    outputs = [
        added,
        ok("upstream list"),
        ok("upstream list --json"),
        ok(f"upstream show {account.id}"),
        ok(f"upstream show {account.id} --json"),
        ok(f"upstream update {account.id} --name t"),
        ok(f"upstream update {account.id} --weight 2 --json"),
        ok(f"upstream disable {account.id} --json"),
        failed("status --json"),  # no gateway runs: exit 1
    ]
    for result in outputs:
        assert plaintext not in result.output
        assert plaintext[13:] not in result.output and plaintext[-12:] not in result.output
    assert "sk-ant-…Zq9x" in outputs[1].out and "sk-ant-…Zq9x" in outputs[3].out
    assert outputs[2].json()[0]["key"] == "sk-ant-…Zq9x"
    assert outputs[4].json()["key"] == "sk-ant-…Zq9x"
    raw = config_file(home).read_bytes()
    assert plaintext.encode() not in raw and plaintext[-12:].encode() not in raw
    sealed = stored(home).upstream_accounts[0].api_key
    assert sealed is not None and is_sealed(sealed)
    assert unseal(secret_key(home), sealed, context=api_key_context(account.id)) == plaintext
    assert (home / "secret.key").stat().st_mode & 0o777 == 0o600


def test_upstream_key_rotation(home: Path) -> None:
    account_id = add_upstream()["id"]
    old_sealed = stored(home).upstream_accounts[0].api_key
    new_key = "sk-ant-api03-" + "N" * 30 + "NEW1"
    result = ok(f"upstream update {account_id} --key -", stdin=new_key + "\n")
    assert new_key not in result.output and "key:         sk-ant-…NEW1" in result.out
    sealed = stored(home).upstream_accounts[0].api_key
    assert sealed is not None and sealed != old_sealed
    assert unseal(secret_key(home), sealed, context=api_key_context(account_id)) == new_key
    assert ANTHROPIC_KEY.encode() not in config_file(home).read_bytes()


def test_sealed_key_is_bound_to_its_account(home: Path) -> None:
    first = add_upstream()["id"]
    second = add_upstream("--name second", key=OPENAI_KEY)["id"]
    one, two = stored(home).upstream_accounts
    assert unseal(secret_key(home), two.api_key or "", context=api_key_context(second)) == (
        OPENAI_KEY
    )
    # One account's sealed key pasted into another must not decrypt there.
    ConfigStore(config_file(home)).update(
        lambda d: d["upstream_accounts"][1].update(api_key=one.api_key)
    )
    assert ok(f"upstream show {second} --json").json()["key"] == CANNOT_DECRYPT
    assert ok(f"upstream show {first} --json").json()["key"] == "sk-ant-…TAIL"


def test_wrong_secret_key_shows_no_secret_and_overwrites_nothing(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id = add_upstream()["id"]
    before = config_file(home).read_bytes()
    key_file = (home / "secret.key").read_bytes()
    monkeypatch.setenv("LLM_GATEWAY_SECRET_KEY", OTHER_SECRET_KEY)

    assert ok(f"upstream show {account_id} --json").json()["key"] == CANNOT_DECRYPT
    assert CANNOT_DECRYPT in ok("upstream list").out

    rotate = failed(f"upstream update {account_id} --key", "sk-ant-api03-" + "R" * 30)
    add = failed("upstream add --type api-key --provider openai --name n --key", OPENAI_KEY)
    for result in (rotate, add):
        assert result.err.startswith("error: sealed value for ")
        assert "cannot be decrypted: wrong secret key" in result.err
        assert result.err.endswith("; nothing was changed\n")
        assert OTHER_SECRET_KEY not in result.output and OPENAI_KEY not in result.output
    assert config_file(home).read_bytes() == before
    assert (home / "secret.key").read_bytes() == key_file

    monkeypatch.delenv("LLM_GATEWAY_SECRET_KEY")
    assert ok(f"upstream show {account_id} --json").json()["key"] == "sk-ant-…TAIL"


def test_malformed_secret_key_variable_is_a_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_upstream()
    before = config_file(home).read_bytes()
    monkeypatch.setenv("LLM_GATEWAY_SECRET_KEY", "not-a-key")
    result = failed("upstream add --type api-key --provider openai --name n --key", OPENAI_KEY)
    assert result.err.startswith("error: LLM_GATEWAY_SECRET_KEY is set but is not a valid key")
    assert "not-a-key" not in result.err
    assert config_file(home).read_bytes() == before


def test_secret_key_from_the_environment_is_used_when_set(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_GATEWAY_SECRET_KEY", OTHER_SECRET_KEY)
    account_id = add_upstream()["id"]
    assert not (home / "secret.key").exists()
    sealed = stored(home).upstream_accounts[0].api_key or ""
    key = bytes.fromhex(OTHER_SECRET_KEY)
    assert unseal(key, sealed, context=api_key_context(account_id)) == ANTHROPIC_KEY


# --- env ----------------------------------------------------------------------


NO_PROXY_VARIABLES = {
    name: None
    for base in ("http_proxy", "https_proxy", "no_proxy")
    for name in (base, base.upper())
}
UNSET = {"config": None, "environment": None, "variable": None, "in_effect": None, "source": None}


def env_cli(command: str, environ: dict[str, str | None]) -> CliResult:
    result = run_cli(*shlex.split(command), env={**NO_PROXY_VARIABLES, **environ})
    assert result.code == 0, result.output
    return result


def test_env_defaults(home: Path) -> None:
    assert env_cli("env list", {}).out.splitlines() == [
        "NAME         CONFIG  ENVIRONMENT  USED",
        "http_proxy   -       -            none",
        "https_proxy  -       -            none",
        "no_proxy     -       -            none",
        "The gateway uses the config's value where one is set, else the environment's; "
        "the environment shown is this shell's (a gateway started elsewhere has its own).",
    ]
    assert env_cli("env list --json", {}).json() == {
        "http_proxy": UNSET,
        "https_proxy": UNSET,
        "no_proxy": UNSET,
    }


def test_env_list_shows_the_proxy_variables_of_the_environment_masked(home: Path) -> None:
    environ: dict[str, str | None] = {
        "HTTPS_PROXY": "http://bob:env/s3cret@corp-proxy:8080",  # a "/" in the password
        "http_proxy": "tok3n-only@plain-proxy:3128",  # bare host:port, user name only
        "NO_PROXY": "localhost,.internal",
    }
    ok("env set --https-proxy http://alice:cfg-s3cret@cfg-proxy:3128")
    listing = env_cli("env list", environ)
    assert "s3cret" not in listing.output
    assert "tok3n-only" not in listing.output
    rows = {line.split()[0]: line.split() for line in listing.out.splitlines()[1:4]}
    assert rows["http_proxy"] == [
        "http_proxy",
        "-",
        "http_proxy=****@plain-proxy:3128",
        "environment",
    ]
    assert rows["https_proxy"] == [
        "https_proxy", "http://alice:****@cfg-proxy:3128",
        "HTTPS_PROXY=http://bob:****@corp-proxy:8080", "config",
    ]  # fmt: skip
    assert rows["no_proxy"] == ["no_proxy", "-", "NO_PROXY=localhost,.internal", "environment"]
    data = env_cli("env list --json", environ).json()
    assert "s3cret" not in json.dumps(data)
    assert data["https_proxy"] == {
        "config": "http://alice:****@cfg-proxy:3128",
        "environment": "http://bob:****@corp-proxy:8080",
        "variable": "HTTPS_PROXY",
        "in_effect": "http://alice:****@cfg-proxy:3128",
        "source": "config",
    }
    assert data["http_proxy"]["in_effect"] == "****@plain-proxy:3128"
    assert data["no_proxy"]["in_effect"] == "localhost,.internal"
    # the lower-case variable wins over the upper-case one, as in the gateway
    both = {"https_proxy": "http://lower:3128", "HTTPS_PROXY": "http://upper:3128"}
    ok("env unset --name https_proxy")
    row = env_cli("env list --json", both).json()["https_proxy"]
    assert (row["variable"], row["in_effect"], row["source"]) == (
        "https_proxy",
        "http://lower:3128",
        "environment",
    )
    # an empty config value means "no proxy", whatever the environment says
    ok("env set --https-proxy=")
    row = env_cli("env list --json", both).json()["https_proxy"]
    assert (row["config"], row["in_effect"], row["source"]) == ("", None, "config")
    assert "(empty: no proxy)" in env_cli("env list", both).out


def test_env_set_show_unset_with_the_password_masked(home: Path) -> None:
    proxy = "http://alice:s3cr3t-pw@proxy.internal:3128"
    masked = "http://alice:****@proxy.internal:3128"
    outputs = [
        ok("env set --no-proxy=localhost,127.0.0.1 --http-proxy", proxy),
        ok("env set --json", f"--https-proxy={proxy}"),
        env_cli("env list", {}),
        env_cli("env list --json", {}),
        ok("env show --name http_proxy"),
        ok("env show --name=https-proxy --json"),
        failed("status"),  # no gateway runs: exit 1
        failed("status --json"),  # no gateway runs: exit 1
    ]
    for result in outputs:
        assert "s3cr3t-pw" not in result.output
    assert masked in outputs[0].out and "localhost,127.0.0.1" in outputs[0].out
    both = {"http_proxy": masked, "https_proxy": masked, "no_proxy": "localhost,127.0.0.1"}
    listed = {name: row["config"] for name, row in outputs[3].json().items()}
    assert listed == both
    assert {name: row["in_effect"] for name, row in outputs[3].json().items()} == both
    assert outputs[1].json()["https_proxy"]["config"] == masked
    assert outputs[4].out == masked + "\n"
    assert outputs[5].json() == {"name": "https_proxy", "value": masked}
    assert stored(home).environment.http_proxy == proxy  # stored whole: the server needs it
    assert ok("env unset --name http_proxy").out == "http_proxy cleared.\n"
    assert ok("env show --name http_proxy").out == "-\n"
    assert ok("env unset --name no-proxy --json").json() == {"name": "no_proxy", "value": None}
    environment = stored(home).environment
    assert (environment.http_proxy, environment.https_proxy, environment.no_proxy) == (
        None,
        proxy,
        None,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("--http-proxy proxy:3128", "http_proxy must be an http:// or https:// URL with a host"),
        (
            "--https-proxy socks5://h:1",
            "https_proxy must be an http:// or https:// URL with a host",
        ),
        ("", "nothing to set: give --http-proxy, --https-proxy or --no-proxy"),
    ],
)
def test_env_set_refuses_bad_values(home: Path, options: str, message: str) -> None:
    ok("env list")
    before = config_file(home).read_bytes()
    assert failed(f"env set {options}").err == f"error: {message}\n"
    assert config_file(home).read_bytes() == before


# --- status, health, server status, oauth ---------------------------------------


def test_status_without_a_server_says_so_and_exits_1(home: Path, quiet_port: int) -> None:
    ok("apikey add --name a")
    disabled = ok("apikey add --name b --json").json()["id"]
    ok(f"apikey disable {disabled}")
    account_id = add_upstream()["id"]
    lines = failed("status").out.splitlines()
    assert lines[:4] == [
        f"Gateway at 127.0.0.1:{quiet_port}: not running",
        f"Config: {config_file(home)}",
        "Gateway keys: 1 enabled of 2",
        "Upstream accounts: 1",
    ]
    assert lines[4].split() == ["ID", "NAME", "PROVIDER", "TYPE", "STATE"]
    assert lines[5].split()[:4] == [account_id, "main", "anthropic", "api-key"]
    assert lines[5].endswith("unknown (gateway not running)")
    info = json.loads(failed("status --json").out)
    assert info["server"] == {
        "address": f"127.0.0.1:{quiet_port}",
        "reachable": False,
        "health": None,
    }
    assert info["gateway_keys"] == {"total": 2, "enabled": 1}
    assert failed("server status").out.splitlines()[0] == (
        f"Gateway at 127.0.0.1:{quiet_port}: not running"
    )
    assert json.loads(failed("server status --json").out)["server"]["reachable"] is False


def test_health_without_a_server_exits_1(home: Path, quiet_port: int) -> None:
    result = failed("health --timeout 2")
    assert result.out == f"unhealthy: no gateway answers on 127.0.0.1:{quiet_port}\n"
    assert json.loads(failed("health --json").out) == {"healthy": False, "health": None}


def test_status_and_health_against_a_running_gateway(home: Path) -> None:
    store = ConfigStore(config_file(home))
    account_id = add_upstream()["id"]
    with gateway_in_thread(store) as (_, port):
        point_config_at(store, port)
        assert ok("health").out == "healthy: status ok\n"
        report = ok("health --json").json()
        assert report["healthy"] is True and report["health"]["status"] == "ok"
        lines = ok("status").out.splitlines()
        assert lines[0] == f"Gateway at 127.0.0.1:{port}: running"
        assert any(line.startswith(account_id) for line in lines)
        info = ok("status --json").json()
        assert info["server"]["reachable"] is True
        assert info["server"]["health"]["status"] == "ok"
        assert ok("server status").out.startswith(f"Gateway at 127.0.0.1:{port}: running")
    assert failed("health").out.startswith("unhealthy: no gateway answers")
