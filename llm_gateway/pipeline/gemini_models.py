"""``GET /v1beta/models`` and ``GET /v1beta/models/{model}``: the model list in Google's shape.

Theory of operation: the same models ``/v1/models`` lists (``catalog``), each
as a Gemini API ``Model`` (``name`` with its ``models/`` prefix, display name,
the generation methods the gateway serves for it). Asking for one model
answers for any name the key may use and some account serves (a name behind
a glob included), and a 404 in Google's shape otherwise. Token limits are not
known to the gateway and are left out, as the API allows.
"""

from __future__ import annotations

from typing import Any

from ..config.schema import Config, GatewayKey
from ..errors import NotFound
from ..routing.models import route_models
from ..routing.selection import matches
from .catalog import ModelCache, visible_models
from .eligibility import candidates

__all__ = ["GEMINI_METHODS", "gemini_model", "gemini_models"]

#: what a client may ask of every listed model
GEMINI_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def _model(name: str) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "baseModelId": name,
        "version": "001",
        "displayName": name,
        "description": f"{name}, served by llm-gateway",
        "supportedGenerationMethods": list(GEMINI_METHODS),
    }


def gemini_models(config: Config, key: GatewayKey, cache: ModelCache) -> dict[str, Any]:
    """``ListModelsResponse``: every model the key may list, on one page."""
    return {"models": [_model(name) for name in visible_models(config, key, cache)]}


def gemini_model(config: Config, key: GatewayKey, cache: ModelCache, name: str) -> dict[str, Any]:
    """The ``Model`` called ``name`` (``models/`` prefix optional); NotFound when
    the key may not use it or no account serves it."""
    name = name.removeprefix("models/")
    allowed = not key.models or matches(key.models, name)
    served = name in visible_models(config, key, cache) or any(
        candidates(config, model) for model in route_models(config.model_aliases, (), name)[:1]
    )
    if not (allowed and served):
        raise NotFound(f"models/{name} is not found for API version v1beta")
    return _model(name)
