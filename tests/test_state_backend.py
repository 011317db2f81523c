"""The ``state:`` section: its checks, the one-line error without redis-py, the
refusal of a multi-instance set-up that would lose rotated OAuth tokens, and
the backend shown by ``/health`` and ``status``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import gateway_in_thread, get_health, point_config_at, run_cli
from redis_server import redis_url

from llm_gateway.config.schema import SchemaError, StateConfig, parse_config
from llm_gateway.config.store import ConfigStore

_ = redis_url  # the fixture, imported for pytest


@pytest.fixture
def store(home: Path) -> ConfigStore:
    return ConfigStore(Path(os.environ["LLM_GATEWAY_HOME"]) / "config.yaml")


def set_state(store: ConfigStore, **state: Any) -> None:
    store.update(lambda document: document.__setitem__("state", state))


def test_the_default_is_the_local_backend() -> None:
    assert parse_config({}).state == StateConfig()
    assert StateConfig().backend == "local"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"backend": "redis"}, r"state\.url: is required with backend redis"),
        ({"backend": "redis", "url": "http://h:6379"}, r"state\.url: must be redis://"),
        ({"backend": "memcached"}, r"state\.backend: must be one of local, redis"),
        ({"instances": 0}, r"state\.instances: must be at least 1"),
        ({"command_timeout": 0}, r"state\.command_timeout: must be greater than 0"),
        ({"urll": "redis://h"}, r"state\.urll: unknown setting"),
    ],
)
def test_the_section_is_checked(state: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse_config({"state": state})


def test_a_tls_url_with_an_acl_user_is_taken_and_its_password_never_shown() -> None:
    config = parse_config(
        {"state": {"backend": "redis", "url": "rediss://gw:pw-secret@redis.example:6380/2"}}
    )
    assert config.state.url == "rediss://gw:pw-secret@redis.example:6380/2"
    assert "pw-secret" not in repr(config)


def test_redis_without_the_package_is_one_line_saying_how_to_get_it(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_cli("apikey", "list")  # creates the file
    set_state(store, backend="redis", url="redis://127.0.0.1:6379/0")
    monkeypatch.setitem(sys.modules, "redis", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    result = run_cli("server", "start", "--port", "0")
    assert result.code == 1
    assert result.err == (
        "error: state.backend redis needs the redis package: pip install 'llm-gateway[redis]', "
        "or build the zipapp with: python3 build_zipapp.py --with redis\n"
    )


def test_several_instances_with_oauth_accounts_need_redis(store: ConfigStore) -> None:
    added = run_cli("upstream", "add", "--type", "oauth", "--provider", "anthropic",
                    "--name", "max-1", "--json")  # fmt: skip
    assert added.code == 0, added.output
    set_state(store, instances=3)
    result = run_cli("server", "start", "--port", "0")
    assert result.code == 1
    assert "error: state.instances is 3 but state.backend is local" in result.err
    assert "max-1" in result.err or added.json()["id"] in result.err
    assert "state.backend: redis" in result.err
    assert result.err.count("\n") == 1


def test_health_and_status_show_the_local_backend(store: ConfigStore) -> None:
    run_cli("apikey", "list")
    with gateway_in_thread(store) as (_, port):
        point_config_at(store, port)
        health = get_health(port)
        assert health is not None and health["state"] == {"backend": "local"}
        assert "  shared state: local\n" in run_cli("status").out


def test_health_and_status_show_redis_reachable_without_its_password(
    store: ConfigStore, redis_url: str
) -> None:
    run_cli("apikey", "list")
    scheme, _, rest = redis_url.partition("://")
    # a user Redis does not know: the connection is refused
    with_password = f"{scheme}://nobody:not-the-password@{rest.rpartition('@')[2]}"
    set_state(store, backend="redis", url=redis_url)
    with gateway_in_thread(store) as (_, port):
        point_config_at(store, port)
        health = get_health(port)
        assert health is not None
        assert health["state"] == {
            "backend": "redis",
            "address": f"{scheme}://{rest.rpartition('@')[2]}",
            "reachable": True,
        }
        out = run_cli("status").out
        assert f"  shared state: redis at {health['state']['address']}, reachable\n" in out
    set_state(store, backend="redis", url=with_password)
    with gateway_in_thread(store) as (_, port):
        point_config_at(store, port)
        health = get_health(port)
        assert health is not None
        assert health["state"]["reachable"] is False  # the password is refused
        out = run_cli("status").out
        assert "UNREACHABLE" in out
        assert "not-the-password" not in out + repr(health)
