"""The one list of provider families the gateway knows."""

from __future__ import annotations

from .anthropic import PROVIDER as ANTHROPIC
from .base import Provider
from .gemini import PROVIDER as GEMINI
from .openai import COMPATIBLE as OPENAI_COMPATIBLE
from .openai import PROVIDER as OPENAI

__all__ = ["PROVIDERS", "get_provider"]


def _reserved(name: str) -> Provider:
    def unavailable(*args: object) -> object:
        raise NotImplementedError(f"provider {name!r} is reserved and not served yet")

    return Provider(
        name=name,
        wire_formats={},
        default_base_url=None,
        default_models=(),
        build_target=unavailable,  # type: ignore[arg-type]
        reserved=True,
    )


PROVIDERS: dict[str, Provider] = {
    "anthropic": ANTHROPIC,
    "openai": OPENAI,
    "openai-compatible": OPENAI_COMPATIBLE,
    "gemini": GEMINI,
    "azure": _reserved("azure"),
}


def get_provider(name: str) -> Provider:
    return PROVIDERS[name]
