"""Typed reads from provider JSON, with the field's path in every error.

Theory of operation: codecs never index a provider's dict directly. They wrap
each JSON object in a ``FieldReader`` that knows its path ("messages[2]") and
which error to raise: ``InvalidRequest`` (400) for a client's request,
``UpstreamError`` (502) for an upstream's response. Every accessor checks the
JSON type and raises that error naming the field ("messages[2].content"), so
no KeyError or TypeError ever escapes a codec.

A key that is absent and a key whose value is ``null`` read the same: "not
given".
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from llm_gateway.errors import GatewayError, InvalidRequest
from llm_gateway.formats.unified import JSONValue

__all__ = ["FieldReader", "join_path"]


def join_path(base: str, key: str | int) -> str:
    """``join_path("messages", 2)`` -> "messages[2]"; ``join_path("a", "b")`` -> "a.b"."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


class FieldReader:
    """A JSON object plus its path; typed getters raise ``error`` naming the field."""

    __slots__ = ("_error", "_obj", "path")

    def __init__(
        self, obj: object, path: str = "", error: type[GatewayError] = InvalidRequest
    ) -> None:
        self._error = error
        self.path = path
        if not isinstance(obj, dict):
            raise self.fail(f"{path or 'the body'} must be a JSON object")
        self._obj: dict[str, object] = obj

    # -- errors -------------------------------------------------------------

    def fail(self, message: str, param: str | None = None) -> GatewayError:
        """Build (not raise) this reader's error type."""
        return self._error(message, param=param if param is not None else (self.path or None))

    def at(self, key: str | int) -> str:
        return join_path(self.path, key)

    # -- presence -----------------------------------------------------------

    def has(self, key: str) -> bool:
        """True when ``key`` is present with a non-null value."""
        return self._obj.get(key) is not None

    def present_keys(self) -> Iterator[str]:
        """Keys whose value is not null, in the object's order."""
        return (k for k, v in self._obj.items() if v is not None)

    def get(self, key: str) -> object:
        """The raw value (``None`` when absent); only for values the caller type-checks."""
        return self._obj.get(key)

    # -- scalars ------------------------------------------------------------

    def req_str(self, key: str) -> str:
        value = self._obj.get(key)
        if value is None:
            raise self.fail(f"{self.at(key)} is required", self.at(key))
        if not isinstance(value, str):
            raise self.fail(f"{self.at(key)} must be a string", self.at(key))
        return value

    def opt_str(self, key: str) -> str | None:
        return None if self._obj.get(key) is None else self.req_str(key)

    def opt_int(self, key: str, *, minimum: int | None = None) -> int | None:
        value = self._obj.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{self.at(key)} must be an integer", self.at(key))
        if minimum is not None and value < minimum:
            raise self.fail(f"{self.at(key)} must be at least {minimum}", self.at(key))
        return value

    def req_int(self, key: str, *, minimum: int | None = None) -> int:
        value = self.opt_int(key, minimum=minimum)
        if value is None:
            raise self.fail(f"{self.at(key)} is required", self.at(key))
        return value

    def opt_number(self, key: str) -> float | None:
        """An int or float, returned as given (ints stay ints so they render back unchanged)."""
        value = self._obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{self.at(key)} must be a number", self.at(key))
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{self.at(key)} must be a finite number", self.at(key))
        return value

    def opt_bool(self, key: str) -> bool | None:
        value = self._obj.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.fail(f"{self.at(key)} must be a boolean", self.at(key))
        return value

    # -- containers ---------------------------------------------------------

    def req_list(self, key: str) -> list[object]:
        value = self._obj.get(key)
        if value is None:
            raise self.fail(f"{self.at(key)} is required", self.at(key))
        if not isinstance(value, list):
            raise self.fail(f"{self.at(key)} must be an array", self.at(key))
        return value

    def opt_list(self, key: str) -> list[object] | None:
        return None if self._obj.get(key) is None else self.req_list(key)

    def req_obj(self, key: str) -> FieldReader:
        value = self._obj.get(key)
        if value is None:
            raise self.fail(f"{self.at(key)} is required", self.at(key))
        return FieldReader(value, self.at(key), self._error)

    def opt_obj(self, key: str) -> FieldReader | None:
        return None if self._obj.get(key) is None else self.req_obj(key)

    def opt_json_object(self, key: str) -> JSONValue | None:
        """An opaque JSON object (a schema, tool input) as an immutable JSONValue."""
        value = self._obj.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"{self.at(key)} must be a JSON object", self.at(key))
        try:
            return JSONValue.of(value)
        except ValueError as exc:  # NaN/Infinity, or nesting too deep
            raise self.fail(f"{self.at(key)}: {exc}", self.at(key)) from None

    def req_json_object(self, key: str) -> JSONValue:
        value = self.opt_json_object(key)
        if value is None:
            raise self.fail(f"{self.at(key)} is required", self.at(key))
        return value

    def child(self, value: object, key: str | int) -> FieldReader:
        """Wrap ``value`` (found at ``key`` below this object) in a reader."""
        return FieldReader(value, self.at(key), self._error)

    def items_of(self, key: str) -> Iterator[tuple[str, FieldReader]]:
        """For an array of objects at ``key``: (path, reader) per element."""
        for i, item in enumerate(self.opt_list(key) or []):
            path = join_path(self.at(key), i)
            yield path, FieldReader(item, path, self._error)

    def str_list(self, key: str) -> list[str]:
        """An array of strings at ``key`` (empty when absent)."""
        result: list[str] = []
        for i, item in enumerate(self.opt_list(key) or []):
            if not isinstance(item, str):
                path = join_path(self.at(key), i)
                raise self.fail(f"{path} must be a string", path)
            result.append(item)
        return result
