"""The one list of provider families the gateway knows."""

from __future__ import annotations

from .anthropic import PROVIDER as ANTHROPIC
from .azure import PROVIDER as AZURE
from .base import Provider
from .gemini import PROVIDER as GEMINI
from .openai import COMPATIBLE as OPENAI_COMPATIBLE
from .openai import PROVIDER as OPENAI

__all__ = ["PROVIDERS", "get_provider"]


PROVIDERS: dict[str, Provider] = {
    "anthropic": ANTHROPIC,
    "openai": OPENAI,
    "openai-compatible": OPENAI_COMPATIBLE,
    "gemini": GEMINI,
    "azure": AZURE,
}


def get_provider(name: str) -> Provider:
    return PROVIDERS[name]
