"""Reading the configuration's plain data: the pieces every section uses.

Theory of operation: a ``Section`` wraps one mapping of the YAML document and
hands out typed fields through small readers (``read_str``, ``read_int(1)``,
``read_seconds`` ...), each taking the dotted path of the field so that every
problem raises ``SchemaError`` naming it (``upstream_accounts[1].provider``).
``Section.finish`` refuses the keys no reader asked for: a typo must not
silently do nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..routing.models import is_glob

__all__ = [
    "AUTO",
    "SchemaError",
    "Section",
    "check_unique",
    "read_bool",
    "read_choice",
    "read_choice_list",
    "read_int",
    "read_int_or_auto",
    "read_list",
    "read_model_name",
    "read_name_map",
    "read_non_negative",
    "read_number",
    "read_seconds",
    "read_str",
    "read_str_list",
    "read_str_map",
    "type_name",
]


#: the value of a limit that the gateway sizes itself (None in the dataclasses)
AUTO = "auto"


class SchemaError(ValueError):
    """A value in the configuration has the wrong shape; ``path`` names it."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.detail = message


T = TypeVar("T")


class Section:
    """Reads typed fields out of one mapping, remembering which were used."""

    def __init__(self, data: object, path: str):
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise SchemaError(path, f"must be a mapping, not {type_name(data)}")
        for key in data:
            if not isinstance(key, str):
                raise SchemaError(path, f"keys must be strings, not {type_name(key)}")
        self.data: Mapping[str, Any] = data
        self.path = path
        self.used: set[str] = set()

    def _sub(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, default: T, check: Callable[[str, object], T]) -> T:
        self.used.add(name)
        if name not in self.data or self.data[name] is None:
            return default
        return check(self._sub(name), self.data[name])

    def require(self, name: str, check: Callable[[str, object], T]) -> T:
        self.used.add(name)
        if name not in self.data or self.data[name] is None:
            raise SchemaError(self._sub(name), "is required")
        return check(self._sub(name), self.data[name])

    def raw(self, name: str) -> object:
        self.used.add(name)
        return self.data.get(name)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise SchemaError(self._sub(unknown[0]), "unknown setting")


def type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def read_str(path: str, value: object) -> str:
    if not isinstance(value, str):
        raise SchemaError(path, f"must be a string, not {type_name(value)}")
    return value


def read_bool(path: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(path, f"must be true or false, not {type_name(value)}")
    return value


def read_int(minimum: int, maximum: int | None = None) -> Callable[[str, object], int]:
    def check(path: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(path, f"must be a whole number, not {type_name(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise SchemaError(path, f"must be at least {minimum}{upper}")
        return value

    return check


def read_int_or_auto(minimum: int) -> Callable[[str, object], int | None]:
    """A whole number, or ``auto`` (None): the runtime derives the value."""
    whole = read_int(minimum)

    def check(path: str, value: object) -> int | None:
        if value == AUTO:
            return None
        if isinstance(value, str):
            raise SchemaError(path, f"must be a whole number or {AUTO}, not {value!r}")
        return whole(path, value)

    return check


def read_seconds(path: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(path, f"must be a number of seconds, not {type_name(value)}")
    if not value > 0:
        raise SchemaError(path, "must be greater than 0")
    return float(value)


def read_number(path: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(path, f"must be a number, not {type_name(value)}")
    return float(value)


def read_non_negative(path: str, value: object) -> float:
    number = read_number(path, value)
    if number < 0:
        raise SchemaError(path, "must not be negative")
    return number


def read_choice(options: tuple[str, ...]) -> Callable[[str, object], str]:
    def check(path: str, value: object) -> str:
        text = read_str(path, value)
        if text not in options:
            raise SchemaError(path, f"must be one of {', '.join(options)}; got {text!r}")
        return text

    return check


def read_str_list(path: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise SchemaError(path, f"must be a list, not {type_name(value)}")
    return tuple(read_str(f"{path}[{i}]", item) for i, item in enumerate(value))


def read_choice_list(options: tuple[str, ...]) -> Callable[[str, object], tuple[str, ...]]:
    def check(path: str, value: object) -> tuple[str, ...]:
        items = read_str_list(path, value)
        for i, item in enumerate(items):
            read_choice(options)(f"{path}[{i}]", item)
        return items

    return check


def read_str_map(path: str, value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise SchemaError(path, f"must be a mapping, not {type_name(value)}")
    return tuple((read_str(path, k), read_str(f"{path}.{k}", v)) for k, v in value.items())


def read_list(data: object, path: str) -> list[object]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise SchemaError(path, f"must be a list, not {type_name(data)}")
    return data


def check_unique(items: tuple[Any, ...], path: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            raise SchemaError(f"{path}[{i}].id", f"duplicate id {item.id!r}")
        seen.add(item.id)


def read_model_name(path: str, value: object) -> str:
    name = read_str(path, value)
    if not name or is_glob(name):
        raise SchemaError(path, f"must name one model, not a pattern; got {name!r}")
    return name


def read_name_map(path: str, value: object) -> tuple[tuple[str, str], ...]:
    """Model (exact or glob) -> one concrete model name."""
    pairs = read_str_map(path, value)
    for pattern, target in pairs:
        read_model_name(f"{path}.{pattern}", target)
    return pairs
