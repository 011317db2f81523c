"""FieldReader: typed reads that name the failing field."""

from __future__ import annotations

import pytest

from llm_gateway.errors import InvalidRequest, UpstreamError
from llm_gateway.formats.fields import FieldReader, join_path


def test_join_path() -> None:
    assert join_path("", "model") == "model"
    assert join_path("messages", 2) == "messages[2]"
    assert join_path("messages[2]", "content") == "messages[2].content"


def test_non_objects_are_rejected_with_the_path() -> None:
    with pytest.raises(InvalidRequest) as caught:
        FieldReader([1], "messages[0]")
    assert caught.value.param == "messages[0]"
    with pytest.raises(InvalidRequest) as caught:
        FieldReader("x")
    assert caught.value.param is None
    assert "body" in caught.value.message


def test_error_type_follows_the_reader() -> None:
    r = FieldReader({"n": "x"}, "usage", UpstreamError)
    with pytest.raises(UpstreamError) as caught:
        r.opt_int("n")
    assert caught.value.param == "usage.n"
    assert caught.value.status == 502


def test_scalars() -> None:
    r = FieldReader({"i": 5.0, "b": True, "f": 1, "s": "x", "nil": None, "nan": float("nan")})
    assert r.opt_int("i") == 5
    assert r.opt_number("f") == 1 and isinstance(r.opt_number("f"), int)
    assert r.opt_bool("b") is True
    assert r.opt_str("nil") is None and r.opt_int("missing") is None
    assert list(r.present_keys()) == ["i", "b", "f", "s", "nan"]
    for getter, key in [
        (r.opt_int, "b"),
        (r.opt_number, "b"),
        (r.opt_number, "nan"),
        (r.opt_bool, "f"),
        (r.opt_str, "f"),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            getter(key)
        assert caught.value.param == key
    with pytest.raises(InvalidRequest) as caught:
        r.req_str("nil")
    assert caught.value.message == "nil is required"
    with pytest.raises(InvalidRequest):
        r.opt_int("i", minimum=6)


def test_containers_and_json_objects() -> None:
    r = FieldReader({"items": [{"a": 1}, 2], "obj": {"k": [1]}, "strs": ["a", 1]})
    paths = []
    with pytest.raises(InvalidRequest) as caught:
        for path, item in r.items_of("items"):
            paths.append((path, item.opt_int("a")))
    assert paths == [("items[0]", 1)]
    assert caught.value.param == "items[1]"
    assert r.opt_json_object("obj") is not None and r.req_json_object("obj").value() == {"k": [1]}
    with pytest.raises(InvalidRequest) as caught:
        r.opt_json_object("items")
    assert caught.value.param == "items"
    with pytest.raises(InvalidRequest) as caught:
        r.str_list("strs")
    assert caught.value.param == "strs[1]"
