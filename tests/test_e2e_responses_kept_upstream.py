"""Responses an OpenAI account keeps itself (``store`` true, passed through untouched).

* Their ``previous_response_id`` chains stay on the account that made them,
  also after the gateway restarts: which account keeps which response is
  kept in the responses file, not in memory.
* ``GET``/``DELETE /v1/responses/{id}`` of such a response is asked of that
  account, for the key that made it only; an unknown id is OpenAI's 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import exchange, raw_request, run, wait_until
from fake_upstream import (
    OPENAI_UPSTREAM_KEY,
    Answer,
    FakeUpstream,
    Received,
    Reply,
    Wired,
    add_account,
    add_gateway_key,
    isolate_environment,
    json_reply,
    openai_client,
    openai_error,
    running_gateway,
    wired_gateway,
)
from test_e2e_responses import answering_as


class TwoAccounts:
    def __init__(self, gw: Wired, second: FakeUpstream):
        self.gw = gw
        self.second = second

    def by_text(self, text: str) -> FakeUpstream:
        return self.gw.openai_up if text == "one" else self.second


def keeping(text: str, ident: str) -> Any:
    """An OpenAI upstream that answers turns and serves ``GET``/``DELETE`` of its own."""
    made: dict[str, dict[str, Any]] = {}
    answer = answering_as(Answer(text=text), ident)

    def handler(request: Received) -> Reply:
        if request.method == "POST":
            reply = answer(request)
            body = json.loads(reply.body)
            made[body["id"]] = body
            return reply
        response_id = request.path.rsplit("/", 1)[-1]
        if response_id not in made:
            return openai_error(404, "invalid_request_error", f"No response '{response_id}'.")
        if request.method == "DELETE":
            del made[response_id]
            return json_reply({"id": response_id, "object": "response", "deleted": True})
        return json_reply(made[response_id])

    return handler


@pytest.fixture
def two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoAccounts]:
    """Two OpenAI accounts taking turns (round robin, no sticky sessions)."""
    isolate_environment(monkeypatch, tmp_path / "home")

    def configure(document: dict[str, Any]) -> None:
        document["routing"] = {"strategy": "round-robin", "sticky_sessions": False}

    with FakeUpstream() as second:

        def second_account() -> None:
            add_account("openai", second.base_url + "/v1", name="two", key=OPENAI_UPSTREAM_KEY)

        with wired_gateway(configure=configure, before_start=second_account) as gw:
            gw.openai_up.respond(keeping("one", "one"))
            second.respond(keeping("two", "two"))
            yield TwoAccounts(gw, second)


def test_a_chain_stays_on_its_account_after_a_restart(two: TwoAccounts) -> None:
    gw = two.gw
    first = gw.openai().responses.create(model="gpt-4o", input="hi")
    gw.close_clients()
    with running_gateway(gw.store) as (_, port):
        client = openai_client(port, gw.key)
        try:
            unchained = {client.responses.create(model="gpt-4o", input="x").output_text}
            unchained.add(client.responses.create(model="gpt-4o", input="x").output_text)
            assert unchained == {"one", "two"}  # without a chain, both serve
            for _ in range(4):
                turn = client.responses.create(
                    model="gpt-4o", input="again", previous_response_id=first.id
                )
                assert turn.output_text == first.output_text
            sent = two.by_text(first.output_text).last().json()
            assert sent["previous_response_id"] == first.id
        finally:
            client.close()


def test_get_and_delete_reach_the_account_that_keeps_the_response(two: TwoAccounts) -> None:
    gw = two.gw
    client = gw.openai()
    made = [client.responses.create(model="gpt-4o", input="hi") for _ in range(2)]
    assert {m.output_text for m in made} == {"one", "two"}
    for response in made:
        owner = two.by_text(response.output_text)
        fetched = client.responses.retrieve(response.id)
        assert fetched.id == response.id and fetched.output_text == response.output_text
        asked = owner.last()
        assert (asked.method, asked.path) == ("GET", f"/v1/responses/{response.id}")
        assert asked.header("authorization") == f"Bearer {OPENAI_UPSTREAM_KEY}"
    gone = made[0]
    client.responses.delete(gone.id)
    owner = two.by_text(gone.output_text)
    assert (owner.last().method, owner.last().path) == ("DELETE", f"/v1/responses/{gone.id}")
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(gone.id)  # the gateway forgot it: a 404 without asking
    assert owner.last().method == "DELETE"


def test_another_key_and_an_unknown_id_get_openais_404(two: TwoAccounts) -> None:
    gw = two.gw
    made = gw.openai().responses.create(model="gpt-4o", input="hi")
    other = add_gateway_key("other")
    headers = [("authorization", f"Bearer {other}")]

    def served() -> bool:  # once the running gateway has reloaded its file
        listing = raw_request("GET", "/v1/models", headers=headers)
        return run(exchange(gw.port, listing)).status == 200

    wait_until(served, 10, "the new key to be served")
    for response_id in (made.id, "resp_unknown"):
        for method in ("GET", "DELETE"):
            answer = run(
                exchange(
                    gw.port, raw_request(method, f"/v1/responses/{response_id}", headers=headers)
                )
            )
            assert answer.status == 404, answer.body
            error = answer.json()["error"]
            assert error["type"] == "invalid_request_error" and response_id in error["message"]
    assert all(r.method == "POST" for r in [*gw.openai_up.requests, *two.second.requests])


def test_an_upstream_error_is_relayed_masked(two: TwoAccounts) -> None:
    gw = two.gw
    made = gw.openai().responses.create(model="gpt-4o", input="hi")
    owner = two.by_text(made.output_text)
    leak = f"upstream saw key {OPENAI_UPSTREAM_KEY}"
    owner.respond(openai_error(500, "server_error", leak))
    answer = run(
        exchange(
            gw.port,
            raw_request(
                "GET",
                f"/v1/responses/{made.id}",
                headers=[("authorization", f"Bearer {gw.key}")],
            ),
        )
    )
    assert answer.status == 500
    assert OPENAI_UPSTREAM_KEY not in answer.body.decode()
    assert answer.json()["error"]["type"] == "server_error"
