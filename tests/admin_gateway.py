"""A gateway set up for the admin page's tests: two OpenAI accounts (a broken one
tried first, a healthy one behind it), an admin key and a plain key."""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import run_cli, wait_until
from fake_upstream import (
    Answer,
    FakeUpstream,
    add_account,
    answering,
    openai_error,
    running_gateway,
)

from llm_gateway.config.store import ConfigStore
from llm_gateway.ledger.query import LedgerReader
from llm_gateway.ledger.records import LedgerRecord
from llm_gateway.ledger.store import LedgerStore

MODEL = "gpt-admin-test"
#: the broken account's upstream key: it must never be shown anywhere
BROKEN_KEY = "sk-broken-" + "b" * 24
HEALTHY_KEY = "sk-healthy-" + "h" * 24
#: per million tokens
PRICES = {"match": "gpt-*", "input": 2.0, "output": 10.0}


@dataclass
class AdminSetup:
    gateway: Any
    port: int
    store: ConfigStore
    broken: str  # account id
    healthy: str  # account id
    admin_key: str
    admin_key_id: str
    user_key: str

    def call(
        self, method: str, path: str, key: str | None, body: Any = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            headers = {"content-type": "application/json"}
            if key is not None:
                headers["authorization"] = f"Bearer {key}"
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    def json(self, method: str, path: str, key: str | None, body: Any = None) -> Any:
        status, _, raw = self.call(method, path, key, body)
        assert status == 200, raw
        return json.loads(raw)

    def chat(self) -> int:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        status, _, _ = self.call("POST", "/v1/chat/completions", self.user_key, body)
        return status

    def break_the_first_account(self) -> None:
        """One request: the broken account answers 500 (its circuit opens at the
        first failure), the healthy one serves the client."""
        assert self.chat() == 200
        wait_until(
            lambda: self.account(self.broken)["failures"] >= 1,
            10.0,
            "the broken account's failure to be recorded",
        )

    def use_ledger(self, records: list[LedgerRecord]) -> None:
        """Serve usage from a ledger file holding ``records``."""
        path = self.store.home / "admin-test-ledger.db"
        store = LedgerStore(path)
        store.insert(records)
        store.close()
        self.gateway.admin.ledger = lambda: LedgerReader(path)

    def account(self, account_id: str) -> dict[str, Any]:
        rows = self.json("GET", "/admin/api/accounts", self.admin_key)["accounts"]
        found: dict[str, Any] = next(r for r in rows if r["id"] == account_id)
        return found


def record(at: float, **changes: object) -> LedgerRecord:
    base = LedgerRecord(
        time=at,
        request_id=f"req-{at}",
        key_id="k1",
        account_id="up-a",
        client_format="openai-chat",
        upstream_format="openai-chat",
        model="gpt-a",
        upstream_model="gpt-a",
        status=200,
        error_kind="",
        attempts=1,
        input_tokens=100,
        output_tokens=10,
        cache_read_tokens=0,
        cache_write_tokens=0,
        cache_write_1h_tokens=0,
        reasoning_tokens=0,
        duration_ms=12.5,
        ttfb_ms=3.0,
        streamed=False,
        cost=0.25,
    )
    return base._replace(**changes)


@contextlib.contextmanager
def admin_gateway(home: Path) -> Iterator[AdminSetup]:
    with FakeUpstream() as broken_up, FakeUpstream() as healthy_up:
        broken_up.respond(openai_error(500, "server_error", "upstream exploded"))
        healthy_up.respond(answering(Answer(text="fine")))
        store = ConfigStore(home / "config.yaml")
        broken = add_account(
            "openai", broken_up.base_url, name="broken", key=BROKEN_KEY, models="gpt-*"
        )
        healthy = add_account(
            "openai",
            healthy_up.base_url,
            name="healthy",
            key=HEALTHY_KEY,
            models="gpt-*",
            priority=10,
        )
        admin = run_cli("apikey", "add", "--name", "ops", "--permissions", "admin", "--json").json()
        user = run_cli(
            "apikey",
            "add",
            "--name",
            "app",
            "--rpm",
            "60",
            "--budget",
            "5",
            "--budget-period",
            "day",
            "--json",
        ).json()

        def settings(document: dict[str, Any]) -> None:
            document.setdefault("routing", {}).update(failure_threshold=1)
            document["prices"] = {"currency": "USD", "as_of": "2026-01-01", "models": [PRICES]}

        store.update(settings)
        with running_gateway(store) as (gateway, port):
            yield AdminSetup(
                gateway, port, store, broken, healthy, admin["key"], admin["id"], user["key"]
            )
