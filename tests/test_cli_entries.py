"""Gateway keys and upstream accounts as the CLI names them: by id or by name,
names unique, and an update that changes nothing said to be one (exit 1)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from conftest import CliResult, config_file, run_cli

from llm_gateway.config.store import ConfigStore

ANTHROPIC_KEY = "sk-ant-api03-" + "Q7x" * 12 + "TAIL"
OAUTH_ADD = "upstream add --type oauth --provider anthropic --name"


def cli(command: str, *extra: str, stdin: str = "") -> CliResult:
    return run_cli(*shlex.split(command), *extra, stdin=stdin)


def ok(command: str, *extra: str, stdin: str = "") -> CliResult:
    result = cli(command, *extra, stdin=stdin)
    assert result.code == 0, result.output
    return result


def failed(command: str, *extra: str) -> CliResult:
    result = cli(command, *extra)
    assert result.code == 1, result.output
    return result


def add_account(name: str) -> str:
    command = f"upstream add --type api-key --provider anthropic --name {name} --json --key"
    account_id: str = ok(command, ANTHROPIC_KEY).json()["id"]
    return account_id


def add_key(name: str) -> str:
    key_id: str = ok(f"apikey add --name {name} --json").json()["id"]
    return key_id


def document(home: Path) -> dict[str, Any]:
    return ConfigStore(config_file(home)).read_document()


# --- by name or id -------------------------------------------------------------


def test_upstream_accounts_are_named_by_name_or_id(home: Path) -> None:
    work = add_account("work")
    spare = add_account("spare")
    assert ok("upstream show work --json").json()["id"] == work
    assert ok(f"upstream show {spare} --json").json()["name"] == "spare"
    assert ok("upstream disable work").out == f"Upstream account {work} disabled.\n"
    assert ok("upstream enable work --json").json()["enabled"] is True
    assert ok("upstream update spare --weight 3 --json").json()["weight"] == 3
    assert ok("upstream remove spare").out == f"Upstream account {spare} removed.\n"
    assert [a["id"] for a in document(home)["upstream_accounts"]] == [work]


def test_gateway_keys_are_named_by_name_or_id(home: Path) -> None:
    laptop = add_key("laptop")
    ci = add_key("ci")
    assert ok("apikey show laptop --json").json()["id"] == laptop
    assert ok("apikey disable ci").out == f"Gateway key {ci} disabled.\n"
    assert ok("apikey update laptop --rpm 5 --json").json()["rpm"] == 5
    assert ok("apikey enable ci --json").json()["enabled"] is True
    assert ok("apikey remove laptop --json").json() == {"id": laptop, "removed": True}
    assert [k["id"] for k in document(home)["gateway_keys"]] == [ci]


def test_oauth_commands_take_the_account_name(home: Path) -> None:
    account_id = ok(f"{OAUTH_ADD} max-1 --json").json()["id"]
    result = failed("oauth refresh max-1")
    assert result.err == (
        f"error: upstream account {account_id} is not authorised yet: "
        f"run 'llm-gateway oauth start {account_id}'\n"
    )


def test_an_id_wins_over_a_name_and_a_shared_name_asks_for_the_id(home: Path) -> None:
    first, second = add_account("one"), add_account("two")

    def share_a_name(doc: dict[str, Any]) -> None:  # as a hand edit of the file could
        doc["upstream_accounts"][1]["name"] = "one"

    ConfigStore(config_file(home)).update(share_a_name)
    result = failed("upstream show one")
    assert result.err == (
        f"error: 2 upstream accounts are named 'one' ({first}, {second}): give the id instead\n"
    )
    assert ok(f"upstream show {second} --json").json()["id"] == second


# --- unique names ----------------------------------------------------------------


def test_account_names_are_unique_on_add_and_on_rename(home: Path) -> None:
    work = add_account("work")
    spare = add_account("spare")
    before = config_file(home).read_bytes()
    taken = f"error: the name 'work' is taken by upstream account {work}: names are unique, choose another\n"
    command = "upstream add --type api-key --provider anthropic --name work --key"
    assert failed(command, ANTHROPIC_KEY).err == taken
    assert failed(f"{OAUTH_ADD} work").err == taken
    assert failed(f"upstream update {spare} --name work").err == taken
    assert failed(f"upstream update spare --name {work}").err == (
        f"error: {work!r} is the id of another upstream account: choose another name\n"
    )
    assert failed(f"upstream update {spare} --name ' '").err == "error: the name is empty\n"
    assert config_file(home).read_bytes() == before
    assert ok("upstream update work --name work-2 --json").json()["name"] == "work-2"


def test_key_names_are_unique_on_add_and_on_rename(home: Path) -> None:
    laptop = add_key("laptop")
    add_key("ci")
    before = config_file(home).read_bytes()
    taken = f"error: the name 'laptop' is taken by gateway key {laptop}: names are unique, choose another\n"
    result = failed("apikey add --name laptop")
    assert (result.out, result.err) == ("", taken)  # no key was printed: none was made
    assert failed("apikey update ci --name laptop").err == taken
    assert config_file(home).read_bytes() == before


# --- an update that changes nothing ------------------------------------------------


@pytest.mark.parametrize(
    "options",
    ["", "--name work", "--weight 1 --priority 0", "--models claude-*", "--key " + ANTHROPIC_KEY],
)
def test_an_account_update_without_a_change_says_so_and_exits_1(home: Path, options: str) -> None:
    account_id = add_account("work")
    before = config_file(home).read_bytes()
    result = failed(f"upstream update work {options}")
    assert (result.out, result.err) == (
        "",
        f"error: nothing changed: upstream account {account_id} already has these settings\n",
    )
    assert ANTHROPIC_KEY not in result.output
    assert config_file(home).read_bytes() == before


@pytest.mark.parametrize("options", ["", "--name laptop", "--permissions read,write --rpm none"])
def test_a_key_update_without_a_change_says_so_and_exits_1(home: Path, options: str) -> None:
    key_id = add_key("laptop")
    before = config_file(home).read_bytes()
    result = failed(f"apikey update laptop {options}")
    assert (result.out, result.err) == (
        "",
        f"error: nothing changed: gateway key {key_id} already has these settings\n",
    )
    assert config_file(home).read_bytes() == before
