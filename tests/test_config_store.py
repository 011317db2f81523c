"""The config file on disk: first use, atomic and locked writes, errors that point
at the file and line, and which file a command uses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PYTHON, config_file, run_cli, subprocess_env, wait_until

from llm_gateway.config import store as store_module
from llm_gateway.config.schema import Config, default_document, parse_config
from llm_gateway.config.store import ConfigStore, resolve_config_path
from llm_gateway.errors import ConfigError


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftovers(directory: Path) -> list[str]:
    """Files in the gateway home other than the config, its lock and the secret key."""
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.name not in ("config.yaml", ".config.lock", "secret.key")
    )


# --- first use ----------------------------------------------------------------


def test_first_use_creates_private_directory_and_file(home: Path) -> None:
    old_umask = os.umask(0)  # even a permissive umask must not widen the modes
    try:
        result = run_cli("apikey", "list")
    finally:
        os.umask(old_umask)
    assert result.code == 0, result.output
    assert mode_of(home) == 0o700
    assert mode_of(config_file(home)) == 0o600
    document = yaml.safe_load(config_file(home).read_text())
    assert document == default_document()
    assert parse_config(document) == Config()


def test_store_load_creates_defaults_once_and_then_reads(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "nested" / "home" / "config.yaml")
    assert store.signature() is None
    assert store.load() == Config()
    first = store.signature()
    assert first is not None
    assert store.load() == Config()
    assert store.signature() == first  # reading never rewrites


def test_load_without_create_does_not_touch_the_disk(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "home" / "config.yaml")
    assert store.load(create=False) == Config()
    assert not (tmp_path / "home").exists()


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# nothing configured yet\n")
    assert ConfigStore(path).load() == Config()


# --- writing ------------------------------------------------------------------


def test_updates_are_atomic_and_leave_no_temporary_files(home: Path) -> None:
    for i in range(5):
        assert run_cli("apikey", "add", "--name", f"k{i}").code == 0
    assert leftovers(home) == []
    assert mode_of(config_file(home)) == 0o600
    names = [k.name for k in ConfigStore(config_file(home)).load().gateway_keys]
    assert names == [f"k{i}" for i in range(5)]


def test_a_crashed_writers_temporary_file_is_removed_by_the_next_write(home: Path) -> None:
    assert run_cli("apikey", "add", "--name", "k0").code == 0
    # what a writer killed between creating its temporary file and the rename leaves
    leftover = home / ".config.q1w2e3r4.tmp"
    leftover.write_text(config_file(home).read_text())
    assert run_cli("apikey", "add", "--name", "k1").code == 0
    assert leftovers(home) == []
    store = ConfigStore(config_file(home))
    leftover.write_text("half")
    store.remove_stale_temporaries()  # what the server does at start
    assert leftovers(home) == []
    assert [k.name for k in store.load().gateway_keys] == ["k0", "k1"]


def test_a_running_servers_read_refuses_an_empty_or_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    store = ConfigStore(path)
    with pytest.raises(ConfigError, match=f"^{path}: file is missing$"):
        store.load_current()
    for empty in ("", "\n", "# only a comment\n"):
        path.write_text(empty)
        with pytest.raises(ConfigError, match=f"^{path}: file is empty$"):
            store.load_current()
        assert store.load() == Config()  # the CLI still reads it as the defaults
        assert path.read_text() == empty
    store.update(lambda d: d["server"].update(port=1234))
    loaded = store.load_current()
    assert loaded.config.server.port == 1234
    assert loaded.signature == store.signature()
    assert loaded.digest == store.current_digest() != ""


def test_each_write_changes_the_signature(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "config.yaml")
    store.load()
    seen = {store.signature()}
    for port in (1000, 1001, 1002):
        store.update(lambda d, port=port: d["server"].update(port=port))
        seen.add(store.signature())
        assert store.load().server.port == port
    assert len(seen) == 4


def test_an_aborted_update_writes_nothing(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "config.yaml")
    store.load()
    before = store.path.read_bytes()

    def mutate(document: dict[str, Any]) -> None:
        document["server"]["port"] = 1
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        store.update(mutate)
    assert store.path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_an_update_that_would_make_the_file_invalid_is_refused(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "config.yaml")
    store.load()
    before = store.path.read_bytes()
    with pytest.raises(ConfigError) as caught:
        store.update(lambda d: d["server"].update(port="http"))
    message = str(caught.value)
    assert str(store.path) in message
    assert "refusing to write" in message and "server.port" in message
    assert store.path.read_bytes() == before


def test_a_failed_rename_removes_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ConfigStore(tmp_path / "config.yaml")
    store.load()
    before = store.path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, "replace", broken_replace)
    with pytest.raises(ConfigError) as caught:
        store.update(lambda d: d["server"].update(port=1))
    monkeypatch.undo()
    assert str(caught.value) == f"{store.path}: cannot write: No space left on device"
    assert store.path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_written_file_is_plain_yaml_that_round_trips(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "config.yaml")

    def mutate(document: dict[str, Any]) -> None:
        document["server"]["port"] = 4000
        document["environment"]["no_proxy"] = "localhost,127.0.0.1"

    store.update(mutate)
    text = store.path.read_text()
    assert "port: 4000" in text
    assert text.index("server:") < text.index("proxy:")  # keeps the section order
    config = store.load()
    assert config.server.port == 4000
    assert config.environment.no_proxy == "localhost,127.0.0.1"


CONCURRENT_ADDER = textwrap.dedent(
    """
    import contextlib, io, json, sys, time
    from pathlib import Path
    from llm_gateway.cli.main import main

    ready, go, prefix = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    ready.touch()
    while not go.exists():
        time.sleep(0.001)
    ids = []
    for i in range(50):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["apikey", "add", "--name", f"{prefix}{i}", "--json"])
        if code != 0:
            sys.exit(f"add {prefix}{i} failed with {code}")
        ids.append(json.loads(out.getvalue())["id"])
    print(json.dumps(ids))
    """
)


def test_two_processes_adding_keys_at_once_lose_nothing(home: Path, tmp_path: Path) -> None:
    env = subprocess_env()
    processes = [
        subprocess.Popen(
            [
                PYTHON,
                "-c",
                CONCURRENT_ADDER,
                str(tmp_path / f"ready-{prefix}"),
                str(tmp_path / "go"),
                prefix,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("a", "b")
    ]
    try:
        wait_until(
            lambda: all((tmp_path / f"ready-{p}").exists() for p in "ab"),
            30,
            "both processes to start",
        )
        (tmp_path / "go").touch()
        results = [p.communicate(timeout=60) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
    printed = [i for out, _ in results for i in json.loads(out)]
    assert len(printed) == 100
    assert len(set(printed)) == 100

    document = yaml.safe_load(config_file(home).read_text())
    config = parse_config(document)
    stored_ids = [k.id for k in config.gateway_keys]
    assert len(stored_ids) == 100
    assert sorted(stored_ids) == sorted(printed)
    names = sorted(k.name for k in config.gateway_keys)
    assert names == sorted(f"{p}{i}" for p in "ab" for i in range(50))
    assert leftovers(home) == []
    assert mode_of(config_file(home)) == 0o600


# --- corrupted files ----------------------------------------------------------

GOOD_ACCOUNT = """\
upstream_accounts:
- id: up-1
  name: work
  type: api-key
  provider: anthropic
"""

CORRUPTIONS = {
    "bad-yaml": ("server: {port: 80\n", "line 2", "expected ','"),
    "bad-yaml-tab": ("server:\n\tport: 80\n", "line 2, column 1", "character '\\t'"),
    "wrong-type": ('server: {port: "abc"}\n', "line 1", "server.port: must be a whole number"),
    "wrong-type-nested": (
        GOOD_ACCOUNT + "  weight: lots\n",
        "line 6",
        "upstream_accounts[0].weight: must be a whole number",
    ),
    "unknown-provider": (
        GOOD_ACCOUNT.replace("anthropic", "bedrock"),
        "line 5",
        "upstream_accounts[0].provider: must be one of",
    ),
    "unknown-key": (
        "logging:\n  level: info\n  colour: true\n",
        "line 3",
        "logging.colour: unknown setting",
    ),
    "unknown-top-level-key": ("gateway_keys: []\nservers: {}\n", "line 2", "servers: unknown"),
    "not-a-mapping": ("- server\n- proxy\n", "line 1", "the top level must be a mapping"),
    "not-utf8": ("server:\n  host: \udcff\n", "", "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
@pytest.mark.parametrize(
    "command",
    [
        ("apikey", "list"),
        ("apikey", "add", "--name", "x"),
        (
            "upstream",
            "add",
            "--type",
            "api-key",
            "--provider",
            "openai",
            "--name",
            "o",
            "--key",
            "sk-proj-abcdefghijklmnop",
        ),
        ("env", "set", "--no-proxy", "localhost"),
        ("status",),
    ],
    ids=["read", "add-key", "add-upstream", "env-set", "status"],
)
def test_a_corrupted_file_is_reported_and_left_untouched(
    home: Path, case: str, command: tuple[str, ...]
) -> None:
    content, where, what = CORRUPTIONS[case]
    home.mkdir()
    path = config_file(home)
    data = content.encode("utf-8", "surrogateescape")
    path.write_bytes(data)
    result = run_cli(*command)
    assert result.code == 1
    assert result.out == ""
    first_line = result.err.splitlines()[0]
    assert first_line.startswith(f"error: {path}: {where}"), first_line
    assert what in first_line
    assert path.read_bytes() == data
    assert leftovers(home) == []


def test_store_errors_are_config_errors_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("proxy:\n  connect_timeout: -1\n")
    with pytest.raises(ConfigError) as caught:
        ConfigStore(path).load()
    assert str(caught.value) == (f"{path}: line 2: proxy.connect_timeout: must be greater than 0")


def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.mkdir()  # a directory where the file should be
    with pytest.raises(ConfigError) as caught:
        ConfigStore(path).load()
    assert str(path) in str(caught.value) and "cannot read" in str(caught.value)


def test_an_unusable_location_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a directory")
    path = blocker / "config.yaml"
    result = run_cli("--config", str(path), "apikey", "add", "--name", "x")
    assert result.code == 1
    assert result.err == f"error: {path}: cannot use this location: Not a directory\n"
    assert blocker.read_text() == "not a directory"


# --- which file ---------------------------------------------------------------


def test_resolve_config_path_precedence(tmp_path: Path) -> None:
    explicit = tmp_path / "explicit.yaml"
    env = {"LLM_GATEWAY_HOME": str(tmp_path / "envhome")}
    assert resolve_config_path(str(explicit), env) == explicit
    assert resolve_config_path(None, env) == tmp_path / "envhome" / "config.yaml"
    assert resolve_config_path(None, {}) == Path.home() / ".llm-gateway" / "config.yaml"
    assert resolve_config_path("~/x.yaml", {}) == Path.home() / "x.yaml"
    assert resolve_config_path(None, {"LLM_GATEWAY_HOME": "~/gw"}) == (
        Path.home() / "gw" / "config.yaml"
    )


def test_llm_gateway_home_chooses_the_file(home: Path, tmp_path: Path) -> None:
    result = run_cli("apikey", "add", "--name", "in-home", "--json")
    key_id = result.json()["id"]
    assert ConfigStore(config_file(home)).load().key_by_id(key_id) is not None
    other = tmp_path / "other-home"
    moved = run_cli("apikey", "list", "--json", env={"LLM_GATEWAY_HOME": str(other)})
    assert moved.json() == []
    assert (other / "config.yaml").exists()


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_config_option_chooses_the_file(home: Path, tmp_path: Path, form: str) -> None:
    chosen = tmp_path / "elsewhere" / "gateway.yaml"
    option = ["--config", str(chosen)] if form == "separate" else [f"--config={chosen}"]
    result = run_cli(*option, "apikey", "add", "--name", "elsewhere", "--json")
    key_id = result.json()["id"]
    assert ConfigStore(chosen).load().key_by_id(key_id) is not None
    assert mode_of(chosen) == 0o600
    assert not home.exists()  # LLM_GATEWAY_HOME's file was not touched
    listed = run_cli(*option, "apikey", "list", "--json").json()
    assert [k["id"] for k in listed] == [key_id]


def test_config_option_works_for_a_subprocess_too(tmp_path: Path) -> None:
    chosen = tmp_path / "cfg" / "c.yaml"
    env = subprocess_env(LLM_GATEWAY_HOME=str(tmp_path / "unused"))
    done = subprocess.run(
        [PYTHON, "-m", "llm_gateway", "--config", str(chosen), "apikey", "add", "--name", "p"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "Created gateway key" in done.stdout
    assert [k.name for k in ConfigStore(chosen).load().gateway_keys] == ["p"]
    assert not (tmp_path / "unused").exists()


def test_a_home_where_no_lock_can_be_taken_does_not_stop_the_server(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "home" / "config.yaml")
    store.load()
    (store.home / ".config.lock").unlink()
    (store.home / ".config.lock").mkdir()  # cannot be opened as the lock, even by root
    store.remove_stale_temporaries()  # what the server does at start: no error
    assert store.load(create=False) == Config()
