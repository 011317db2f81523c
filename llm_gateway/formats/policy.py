"""Decisions for things one format cannot say in another.

Theory of operation: codecs convert every field that has a counterpart. For
the rest they call into this module, so every such decision is written down
once, logged the same way, and listed in docs/conversion.md:

* ``dropped(field, why)`` logs at DEBUG on ``llm_gateway.formats`` and returns;
  the field is not sent on.
* ``unsupported(field, why)`` returns an ``InvalidRequest`` (a 400 in the
  client's own format) naming the field; the codec raises it.
* The tables below turn values that exist on both sides but in different
  units: OpenAI ``reasoning_effort`` <-> Anthropic ``thinking.budget_tokens`` /
  ``output_config.effort``, and Anthropic's required ``max_tokens`` default.

Log lines carry field names and reasons only, never message content.
"""

from __future__ import annotations

import logging
import re

from llm_gateway.errors import InvalidRequest

__all__ = [
    "ANTHROPIC_MAX_TEMPERATURE",
    "EFFORT_TO_BUDGET",
    "MIN_THINKING_BUDGET",
    "anthropic_effort",
    "budget_to_effort",
    "claude_version",
    "default_max_tokens",
    "dropped",
    "effort_to_budget",
    "fit_budget",
    "logger",
    "openai_effort",
    "supports_adaptive_thinking",
    "unsupported",
]

logger = logging.getLogger("llm_gateway.formats")


def dropped(field: str, why: str) -> None:
    """Record that ``field`` is not carried over (DEBUG log)."""
    logger.debug("format conversion dropped %s: %s", field, why)


def unsupported(field: str, why: str) -> InvalidRequest:
    """The error for a field that cannot be converted; the caller raises it."""
    return InvalidRequest(
        f"{field} is not supported by this gateway's conversion: {why}", param=field
    )


# -- Anthropic max_tokens -------------------------------------------------------

# Documented maximum output tokens per Claude model family (models overview).
# Keys: (family, major, minor); family None matches any family.
_MAX_OUTPUT: dict[tuple[str | None, int, int], int] = {
    (None, 3, 0): 4096,  # claude-3-haiku / -sonnet / -opus
    (None, 3, 5): 8192,  # claude-3-5-sonnet / -haiku
    (None, 3, 7): 64000,  # claude-3-7-sonnet
    ("sonnet", 4, 0): 64000,
    ("opus", 4, 0): 32000,
    ("opus", 4, 1): 32000,
    (None, 4, 5): 64000,  # sonnet / haiku / opus 4.5
    ("opus", 4, 6): 128000,
    ("sonnet", 4, 6): 128000,
    ("opus", 4, 7): 128000,
}
# Newer versions not in the table: every Claude model since 4.5 allows 64000.
_NEWER_MODEL_MAX_OUTPUT = 64000
# Unknown names (aliases, third-party Anthropic-compatible models): the smallest
# maximum any Claude model has, so the default is never rejected as too large.
FALLBACK_MAX_TOKENS = 4096

_FAMILIES = ("opus", "sonnet", "haiku")


def claude_version(model: str) -> tuple[str | None, int, int] | None:
    """(family, major, minor) from a Claude model id, or None if it is not one.

    Handles both orders ("claude-3-5-sonnet-20241022", "claude-sonnet-4-5"),
    provider prefixes ("us.anthropic.claude-...") and suffixes ("@2025...",
    ":0", "-v1"). An 8-digit date is not a version number.
    """
    name = model.lower()
    start = name.find("claude-")
    if start < 0:
        return None
    family: str | None = None
    numbers: list[int] = []
    for token in re.split(r"[-@:]", name[start + len("claude-") :]):
        if token in _FAMILIES and family is None:
            family = token
        elif token.isdigit() and len(token) <= 2 and len(numbers) < 2:
            numbers.append(int(token))
        elif token.isdigit() and len(token) >= 8:
            break  # a date: the version is complete
    if not numbers:
        return None
    return family, numbers[0], numbers[1] if len(numbers) > 1 else 0


def default_max_tokens(model: str) -> int:
    """Anthropic ``max_tokens`` when the client gave none: the model's documented maximum.

    An OpenAI client that omits max_tokens expects the reply to run as long
    as the model allows, so that is what we ask for; see docs/conversion.md.
    """
    version = claude_version(model)
    if version is None:
        return FALLBACK_MAX_TOKENS
    family, major, minor = version
    for key in ((family, major, minor), (None, major, minor)):
        if key in _MAX_OUTPUT:
            return _MAX_OUTPUT[key]
    if (major, minor) >= (4, 5):
        return _NEWER_MODEL_MAX_OUTPUT
    return FALLBACK_MAX_TOKENS


def supports_adaptive_thinking(model: str) -> bool:
    """Claude 4.6 and later take ``thinking: {type: "adaptive"}`` plus ``output_config.effort``.

    Older and unknown models get the budget form, which every
    Anthropic-compatible server understands.
    """
    version = claude_version(model)
    return version is not None and (version[1], version[2]) >= (4, 6)


# -- reasoning effort <-> thinking budget --------------------------------------

MIN_THINKING_BUDGET = 1024  # Anthropic's documented minimum budget_tokens

# OpenAI reasoning_effort -> Anthropic thinking.budget_tokens (budget form).
EFFORT_TO_BUDGET: dict[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 32768,
}

# OpenAI effort -> Anthropic output_config.effort (adaptive form). Anthropic has
# no "minimal"; OpenAI's "xhigh" is Anthropic's "max".
_TO_ANTHROPIC_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}
_TO_ANTHROPIC_EFFORT.update({"xhigh": "max", "max": "max"})
# Anthropic effort -> OpenAI reasoning_effort.
_TO_OPENAI_EFFORT = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh"}
_TO_OPENAI_EFFORT.update({"max": "xhigh", "minimal": "minimal", "none": "none"})


def effort_to_budget(effort: str, max_tokens: int) -> int | None:
    """A thinking budget for ``effort`` that fits under ``max_tokens``, or None if none fits.

    Anthropic requires MIN_THINKING_BUDGET <= budget_tokens < max_tokens. When
    the table value does not fit, half of max_tokens (at least the minimum)
    is used; when even the minimum does not fit, thinking is left off.
    """
    return fit_budget(EFFORT_TO_BUDGET.get(effort, EFFORT_TO_BUDGET["medium"]), max_tokens)


def fit_budget(budget: int, max_tokens: int) -> int | None:
    """``budget`` when it fits under ``max_tokens``, else half of max_tokens (at
    least the minimum), else None (thinking left off)."""
    if budget < max_tokens:
        return budget
    if max_tokens > MIN_THINKING_BUDGET:
        return max(MIN_THINKING_BUDGET, max_tokens // 2)
    return None


def budget_to_effort(budget: int) -> str:
    """Anthropic budget_tokens -> OpenAI reasoning_effort (inverse of EFFORT_TO_BUDGET)."""
    if budget <= EFFORT_TO_BUDGET["low"]:
        return "low"
    if budget <= EFFORT_TO_BUDGET["medium"]:
        return "medium"
    return "high"


def anthropic_effort(effort: str) -> str | None:
    """OpenAI reasoning_effort -> Anthropic output_config.effort (None: no counterpart)."""
    return _TO_ANTHROPIC_EFFORT.get(effort)


def openai_effort(effort: str) -> str | None:
    """Anthropic output_config.effort -> OpenAI reasoning_effort (None: no counterpart)."""
    return _TO_OPENAI_EFFORT.get(effort)


# -- sampling ---------------------------------------------------------------------

# OpenAI accepts temperature 0..2, Anthropic 0..1.
ANTHROPIC_MAX_TEMPERATURE = 1.0
