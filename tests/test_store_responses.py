"""The kept-responses store: sealed rows per gateway key, bounded, crash-safe SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llm_gateway.config.schema import SchemaError, parse_config
from llm_gateway.store.responses import ResponseStore, StoredResponse

KEY = bytes(range(32))


def record(ident: str, created: float, text: str = "secret answer") -> StoredResponse:
    return StoredResponse(
        id=ident,
        account_id="acct1",
        created=created,
        input_items=({"type": "message", "role": "user", "content": "question"},),
        output_items=({"type": "message", "content": [{"type": "output_text", "text": text}]},),
        response={"id": ident, "object": "response", "output": []},
    )


def store_at(tmp_path: Path, key: bytes = KEY) -> ResponseStore:
    return ResponseStore(tmp_path / "responses.sqlite3", lambda: key)


def test_kept_per_key_and_readable_after_reopening(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.put("key-a", record("resp_1", 100.0), max_stored=10, max_age=1000)
    store.close()
    again = store_at(tmp_path)
    kept = again.get("key-a", "resp_1", now=150.0, max_age=1000)
    assert kept is not None and kept.account_id == "acct1"
    assert kept.output_items[0]["content"][0]["text"] == "secret answer"
    assert again.get("key-b", "resp_1", now=150.0, max_age=1000) is None
    assert not again.delete("key-b", "resp_1")
    assert again.delete("key-a", "resp_1")
    assert again.get("key-a", "resp_1", now=150.0, max_age=1000) is None


def test_sealed_on_disk_in_wal_mode(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.put("key-a", record("resp_1", 100.0), max_stored=10, max_age=1000)
    path = tmp_path / "responses.sqlite3"
    assert path.stat().st_mode & 0o077 == 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        sealed = db.execute("SELECT sealed FROM responses").fetchone()[0]
    assert "secret answer" not in sealed and "question" not in sealed
    # another secret key cannot open it: as good as gone, never an error
    assert store_at(tmp_path, bytes(32)).get("key-a", "resp_1", now=100.0, max_age=1000) is None


def test_a_row_moved_to_another_key_does_not_open(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.put("key-a", record("resp_1", 100.0), max_stored=10, max_age=1000)
    store.close()
    with sqlite3.connect(tmp_path / "responses.sqlite3") as db:
        db.execute("UPDATE responses SET key_id = 'key-b'")
    assert store_at(tmp_path).get("key-b", "resp_1", now=100.0, max_age=1000) is None


def test_bounded_by_count_and_age(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for n in range(5):
        store.put("key-a", record(f"resp_{n}", 100.0 + n), max_stored=3, max_age=1000)
    assert store.count() == 3
    assert store.get("key-a", "resp_1", now=110.0, max_age=1000) is None
    assert store.get("key-a", "resp_4", now=110.0, max_age=1000) is not None
    # too old to read, and removed by the next write
    assert store.get("key-a", "resp_4", now=2000.0, max_age=1000) is None
    store.put("key-a", record("resp_new", 2000.0), max_stored=3, max_age=1000)
    assert store.count() == 1


def test_responses_config_section() -> None:
    config = parse_config({"responses": {"max_stored": 5, "max_age": 60}})
    assert (config.responses.max_stored, config.responses.max_age) == (5, 60.0)
    with pytest.raises(SchemaError, match="responses.max_age"):
        parse_config({"responses": {"max_age": 0}})
    with pytest.raises(SchemaError, match="responses.unknown"):
        parse_config({"responses": {"unknown": 1}})


def test_chain_owners_per_key_bounded_and_kept_across_reopening(tmp_path: Path) -> None:
    from llm_gateway.store.responses import ChainOwner

    store = store_at(tmp_path)
    for n in range(4):
        owner = ChainOwner(f"acct{n}", "gpt-4o")
        store.put_owner("key-a", f"resp_{n}", owner, created=100.0 + n, max_stored=3, max_age=50)
    store.close()
    again = store_at(tmp_path)
    assert again.owner("key-a", "resp_3", now=110.0, max_age=50) == ChainOwner("acct3", "gpt-4o")
    assert again.owner("key-a", "resp_0", now=110.0, max_age=50) is None  # beyond the count
    assert again.owner("key-b", "resp_3", now=110.0, max_age=50) is None  # another key's
    assert again.owner("key-a", "resp_3", now=200.0, max_age=50) is None  # too old
    again.forget_owner("key-a", "resp_3")
    assert again.owner("key-a", "resp_3", now=110.0, max_age=50) is None
