"""Route paths with one variable segment, such as ``/v1beta/models/{model}:generateContent``.

Theory of operation: a ``PathPattern`` is a template split at its one
``{name}`` placeholder into a fixed prefix and suffix. ``match`` returns the
URL-decoded text between them, or None when the path does not fit: the
prefix and suffix must be there, and the variable part must be non-empty and
hold no raw ``/`` or ``:`` (it names one resource; the suffix says what to
do with it). Pure; the route table (``server.app``) and the endpoint table
(``pipeline.endpoints``) share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["PathPattern"]


@dataclass(frozen=True, slots=True)
class PathPattern:
    prefix: str
    name: str
    suffix: str

    @classmethod
    def parse(cls, template: str) -> PathPattern:
        """``"/a/{x}:b"`` -> PathPattern("/a/", "x", ":b"); ValueError without a placeholder."""
        head, brace, rest = template.partition("{")
        name, close, tail = rest.partition("}")
        if not brace or not close or not name or "{" in tail:
            raise ValueError(f"path template {template!r} needs exactly one {{name}} segment")
        return cls(head, name, tail)

    @property
    def template(self) -> str:
        return f"{self.prefix}{{{self.name}}}{self.suffix}"

    def match(self, path: str) -> str | None:
        """The decoded variable part of ``path``, or None when ``path`` does not fit."""
        if not path.startswith(self.prefix) or not path.endswith(self.suffix):
            return None
        end = len(path) - len(self.suffix)
        raw = path[len(self.prefix) : end] if end >= len(self.prefix) else ""
        if not raw or "/" in raw or ":" in raw:
            return None
        return unquote(raw)
