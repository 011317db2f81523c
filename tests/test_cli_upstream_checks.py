"""What ``upstream add/update`` refuse or point out before an account can misroute:
models for providers without a default, malformed base URLs and the version
segment, accounts that serve nothing, OAuth accounts still to be authorised, and
hints that print the command as the user ran it."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import logging
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PYTHON,
    REPO,
    CliResult,
    config_file,
    free_port,
    point_config_at,
    run_cli,
    subprocess_env,
)

from llm_gateway.cli.context import Context
from llm_gateway.cli.invocation import invoked_as
from llm_gateway.cli.main import main
from llm_gateway.config.store import ConfigStore
from llm_gateway.pipeline.proxy import candidates
from llm_gateway.providers.registry import PROVIDERS
from llm_gateway.runtime import Gateway

KEY = "sk-local-0123456789abcdef"
COMPATIBLE = "upstream add --type api-key --provider openai-compatible --name local"


def cli(command: str, *extra: str) -> CliResult:
    return run_cli(*shlex.split(command), *extra)


def ok(command: str, *extra: str) -> CliResult:
    """Exit 0; ``err`` without the note on whether a running gateway took a change."""
    result = cli(command, *extra)
    assert result.code == 0, result.output
    lines = result.err.splitlines(keepends=True)
    err = "".join(line for line in lines if not line.startswith("note: the gateway at "))
    return CliResult(result.code, result.out, err)


def failed(command: str, *extra: str) -> CliResult:
    result = cli(command, *extra)
    assert result.code == 1, result.output
    return result


def accounts(home: Path) -> list[dict[str, Any]]:
    return list(ConfigStore(config_file(home)).read_document().get("upstream_accounts") or [])


# --- models: no provider default means the account must say --------------------------


def test_openai_compatible_without_models_is_refused(home: Path) -> None:
    result = failed(f"{COMPATIBLE} --base-url http://127.0.0.1:8000/v1 --key {KEY}")
    assert result.err == (
        "error: provider 'openai-compatible' has no default models: say which models the "
        "account serves with --models (globs, e.g. --models 'qwen*,llama-3*') or "
        "--model-map client=upstream\n"
    )
    assert KEY not in result.output
    assert accounts(home) == []
    mapped = f"{COMPATIBLE} --base-url http://127.0.0.1:8000/v1 --model-map gpt-4o=qwen2.5 --json"
    assert ok(mapped, "--key", KEY).json()["models"] == []
    named = f"{COMPATIBLE}-2 --base-url http://127.0.0.1:8000/v1 --models qwen* --json"
    assert ok(named, "--key", KEY).json()["models"] == ["qwen*"]


def test_every_provider_without_default_models_requires_them(home: Path) -> None:
    """Decided by the registry's defaults, not by provider names."""
    bare = [name for name, p in PROVIDERS.items() if not p.default_models and not p.reserved]
    assert "openai-compatible" in bare
    for name in bare:
        command = f"upstream add --type api-key --provider {name} --name n-{name}"
        result = failed(command, "--base-url", "http://127.0.0.1:8000/v1", "--key", KEY)
        assert f"provider {name!r} has no default models" in result.err
    served = [name for name, p in PROVIDERS.items() if p.default_models and not p.reserved]
    for name in served:  # the others keep their defaults
        command = f"upstream add --type api-key --provider {name} --name d-{name} --json"
        assert ok(command, "--key", KEY).json()["models"] == list(PROVIDERS[name].default_models)


def test_an_empty_model_list_is_refused_on_add_and_update(home: Path) -> None:
    command = "upstream add --type api-key --provider anthropic --name a --models ,"
    assert failed(command, "--key", KEY).err == (
        "error: the account would serve no model: give --models "
        "(default for provider 'anthropic': claude-*)\n"
    )
    ok("upstream add --type api-key --provider anthropic --name a --key", KEY)
    before = config_file(home).read_bytes()
    assert "would serve no model" in failed("upstream update a --models ''").err
    assert config_file(home).read_bytes() == before


def write_accounts(home: Path, *entries: dict[str, Any]) -> ConfigStore:
    store = ConfigStore(config_file(home))
    store.update(lambda doc: doc.__setitem__("upstream_accounts", list(entries)))
    return store


LEGACY = {  # written before models were required: no models at all
    "id": "up-legacy01",
    "name": "legacy",
    "type": "api-key",
    "provider": "openai-compatible",
    "base_url": "http://127.0.0.1:8000/v1",
}
CLAUDE = {"id": "up-claude01", "name": "claude", "type": "api-key", "provider": "anthropic",
          "models": ["claude-*"]}  # fmt: skip


def test_a_loaded_account_without_models_gets_no_traffic_and_a_warning(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = write_accounts(home, LEGACY, CLAUDE)
    config = store.load()
    for model in ("claude-sonnet-4-5", "gpt-4o", "qwen2.5"):
        assert "up-legacy01" not in [a.id for a in candidates(config, model)]
    caplog.set_level(logging.WARNING, logger="llm_gateway")
    Gateway(store, {})
    [record] = [r for r in caplog.records if r.__dict__.get("account_id") == "up-legacy01"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "upstream account lists no models: no request is routed to it"
    assert record.__dict__["reason"] == "set them with: upstream update up-legacy01 --models GLOBS"

    listing = ok("upstream list")
    warning = (
        "warning: upstream account up-legacy01 (legacy) lists no models, so no request is "
        "routed to it; set them with: llm-gateway upstream update up-legacy01 --models GLOBS\n"
    )
    assert listing.err == warning
    assert ok("upstream show legacy").err == warning
    assert ok(f"upstream update legacy --models 'qwen*' --key {KEY}").err == ""
    assert ok("upstream list").err == ""


def test_list_warns_about_a_catch_all_account_beside_others(home: Path) -> None:
    """What an account added with the old default (``*``) does to its priority peers."""
    catch_all = {**LEGACY, "models": ["*"]}
    write_accounts(home, catch_all, CLAUDE)
    assert ok("upstream list").err == (
        "warning: upstream account up-legacy01 (legacy) serves every model ('*') at priority 0, "
        "so it takes a share of the traffic of up-claude01; narrow it with: "
        "llm-gateway upstream update up-legacy01 --models GLOBS\n"
    )
    ok(f"upstream update legacy --priority 1 --key {KEY}")  # a fallback only: no warning
    assert ok("upstream list").err == ""


def test_a_reload_warns_about_an_account_that_newly_serves_nothing(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = write_accounts(home, CLAUDE)
    gateway = Gateway(store, {})
    caplog.set_level(logging.WARNING, logger="llm_gateway")
    write_accounts(home, CLAUDE, LEGACY)
    assert asyncio.run(gateway.reload())
    warned = [r for r in caplog.records if r.__dict__.get("account_id") == "up-legacy01"]
    assert len(warned) == 1
    caplog.clear()
    store.update(lambda doc: doc["upstream_accounts"][0].update(weight=2))
    assert asyncio.run(gateway.reload())
    assert not [r for r in caplog.records if r.__dict__.get("account_id")]  # said once


# --- base URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:8000/v1", "must start with http:// or https:// and name a host"),
        ("ftp://models.internal/v1", "must start with http:// or https:// and name a host"),
        ("http:///v1", "must start with http:// or https:// and name a host"),
        ("http://host:99999/v1", "has no valid host and port"),
        ("http://host:port/v1", "has no valid host and port"),
        ("http://my host/v1", "has no valid host and port"),
        ("http://host/v1?api-version=1", "must not have a query (?...): paths are appended to it"),
        ("http://host/v1?", "must not have a query (?...): paths are appended to it"),
        ("http://host/v1#models", "must not have a fragment (#...)"),
    ],
)
def test_malformed_base_urls_are_refused(home: Path, url: str, message: str) -> None:
    result = failed(f"{COMPATIBLE} --models qwen* --key {KEY}", "--base-url", url)
    assert result.err == f"error: --base-url {url!r} {message}\n"
    assert accounts(home) == []
    ok("upstream add --type api-key --provider openai --name oa --key", KEY)
    before = config_file(home).read_bytes()
    assert (
        failed("upstream update oa --base-url", url).err == f"error: --base-url {url!r} {message}\n"
    )
    assert config_file(home).read_bytes() == before


def test_credentials_in_a_base_url_are_refused_and_never_shown(home: Path) -> None:
    url = "https://user:pa55word@llm.internal/v1"
    result = failed(f"{COMPATIBLE} --models qwen* --key {KEY}", "--base-url", url)
    assert result.err == (
        "error: --base-url must not carry credentials: give the key with --key, "
        "other headers with --header\n"
    )
    assert "pa55word" not in result.output
    assert accounts(home) == []


V1_HINT = (
    "hint: openai-compatible base URLs usually end in /v1 (as in http://127.0.0.1:8000/v1): "
    "the gateway appends only the endpoint's path; keep this URL if the server's "
    "documentation says so\n"
)
ANTHROPIC_HINT = (
    "hint: anthropic base URLs do not include /v1: the gateway adds it itself (requests "
    "would go to .../v1/v1/...); remove the trailing /v1\n"
)


def test_base_url_hints_say_whether_the_provider_expects_v1(home: Path) -> None:
    added = ok(f"{COMPATIBLE} --models qwen* --key {KEY} --base-url http://127.0.0.1:8000")
    assert added.err == V1_HINT
    assert accounts(home)[0]["base_url"] == "http://127.0.0.1:8000"  # a hint, not a refusal
    quiet = ok(f"{COMPATIBLE}-2 --models q* --key {KEY} --base-url http://127.0.0.1:8000/v1/")
    assert quiet.err == ""
    command = "upstream add --type api-key --provider anthropic --name a --key"
    assert ok(command, KEY, "--base-url", "https://llm-proxy.internal/v1").err == ANTHROPIC_HINT
    assert ok("upstream update a --base-url https://llm-proxy.internal").err == ""
    assert ok("upstream update local --base-url http://127.0.0.1:8000/v1").err == ""


# --- OAuth accounts still to be authorised ----------------------------------------------


def test_list_and_show_give_the_oauth_start_command(home: Path) -> None:
    view = ok("upstream add --type oauth --provider anthropic --name max-1 --json").json()
    start = f"needs oauth start: llm-gateway oauth start {view['id']}"
    row = ok("upstream list").out.splitlines()[1]
    assert row.split()[:4] == [view["id"], "max-1", "anthropic", "oauth"]
    assert start in row
    assert f"state:       {start}" in ok("upstream show max-1").out.splitlines()

    def revoked(doc: dict[str, Any]) -> None:
        doc["upstream_accounts"][0]["oauth"] = {"access_token": "x", "needs_reauth": True}

    ConfigStore(config_file(home)).update(revoked)
    again = f"needs re-authorisation: llm-gateway oauth start {view['id']}"
    assert again in ok("upstream list").out.splitlines()[1]


# --- hints name the command as it was run ------------------------------------------------


def test_invoked_as_names_the_command_the_user_ran(tmp_path: Path) -> None:
    package = str(REPO / "llm_gateway")
    bin_dir = tmp_path / "venv" / "bin"
    script = str(bin_dir / "llm-gateway")

    def on_path(name: str) -> str | None:
        return script if name == "llm-gateway" else None

    def nowhere(name: str) -> str | None:
        return None

    assert invoked_as(
        [script, "apikey"], ["/usr/bin/python3", script, "apikey"], package, on_path
    ) == ("llm-gateway")
    assert invoked_as([script, "x"], ["python", script, "x"], package, nowhere) == script
    module = str(REPO / "llm_gateway" / "__main__.py")
    assert invoked_as(
        [module, "x"], ["python3.11", "-m", "llm_gateway", "x"], package, nowhere
    ) == ("python3.11 -m llm_gateway")
    pyz = tmp_path / "dir with space" / "llm-gateway.pyz"
    inside = str(pyz / "llm_gateway")
    assert invoked_as([str(pyz), "x"], ["python3", "-I", str(pyz), "x"], inside, nowhere) == (
        f"python3 -I '{pyz}'"
    )
    assert invoked_as(["-c", "x"], ["python3", "-c", "...", "x"], package, nowhere) == (
        "llm-gateway"
    )


def load_builder() -> Any:
    spec = importlib.util.spec_from_file_location("build_zipapp", REPO / "build_zipapp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_zipapp_hints_print_a_command_that_runs(tmp_path: Path) -> None:
    pyz = load_builder().build(tmp_path / "llm-gateway.pyz")
    env = subprocess_env(LLM_GATEWAY_HOME=str(tmp_path / "home"))

    def run(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*words], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )

    added = run(PYTHON, "llm-gateway.pyz", "upstream", "add", "--type", "oauth",
                "--provider", "anthropic", "--name", "max")  # fmt: skip
    assert added.returncode == 0, added.stderr
    hint = added.stdout.splitlines()[1]
    assert hint.startswith(f"Authorise it with: {PYTHON} llm-gateway.pyz oauth start up-")
    missing = run(PYTHON, "llm-gateway.pyz", "apikey", "show", "nothere")
    assert missing.stderr == (
        f"error: no gateway key with id or name 'nothere' (see '{PYTHON} llm-gateway.pyz apikey list')\n"
    )
    listing = run(*shlex.split(missing.stderr.split("'")[3]))  # pasted as printed
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("No gateway keys. Create one with: ")
    assert pyz.exists()


def test_every_oauth_start_hint_names_the_program_as_run(home: Path) -> None:
    program = "python3 /opt/llm gateway/llm-gateway.pyz"

    def run(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        context = Context(
            store=ConfigStore(config_file(home)),
            environ={},
            stdout=out,
            stderr=err,
            stdin=io.StringIO(""),
            program=program,
        )
        return CliResult(main(list(args), context=context), out.getvalue(), err.getvalue())

    added = run("upstream", "add", "--type", "oauth", "--provider", "anthropic", "--name", "max")
    account_id = accounts(home)[0]["id"]
    assert added.out.splitlines()[1] == f"Authorise it with: {program} oauth start {account_id}"
    assert f"needs oauth start: {program} oauth start {account_id}" in run("upstream", "list").out
    point_config_at(ConfigStore(config_file(home)), free_port())
    status = run("status", "--json")
    assert status.code == 1  # no gateway runs
    [listed] = json.loads(status.out)["upstreams"]
    assert listed["state"] == f"not authorised ({program} oauth start {account_id})"
    refused = run("oauth", "refresh", "max")
    assert refused.err == (
        f"error: upstream account {account_id} is not authorised yet: "
        f"run '{program} oauth start {account_id}'\n"
    )
    no_flow = run("oauth", "start", "max", "--code", "abc#def")
    assert f"run '{program} oauth start {account_id}' first" in no_flow.err
    missing = run("apikey", "show", "nothere")
    assert missing.err == (
        f"error: no gateway key with id or name 'nothere' (see '{program} apikey list')\n"
    )
