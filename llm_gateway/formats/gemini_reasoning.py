"""Gemini ``generationConfig.thinkingConfig`` <-> unified ``Reasoning``.

Theory of operation: Gemini 2.x models take a token budget
(``thinkingBudget``: a count, ``-1`` dynamic, ``0`` off), Gemini 3 models a
level (``thinkingLevel``) and still accept a budget. Thoughts are returned
only with ``includeThoughts: true``, which the gateway sets whenever the
client asked for thinking (its format then shows them: Anthropic thinking
blocks, OpenAI ``reasoning_content``). The tables:

* budget (Anthropic ``budget_tokens``) -> ``thinkingBudget`` as given, at
  most ``MAX_BUDGET_GEMINI_2`` on Gemini 1.x/2.x models (the Flash models'
  documented maximum; Claude Code asks for 31999);
* adaptive -> ``includeThoughts`` only (dynamic thinking is the default);
* an effort -> on Gemini 1.x/2.x ``thinkingBudget`` from
  ``policy.EFFORT_TO_BUDGET``; on later models ``thinkingLevel`` "low"
  (minimal, low) or "high" (medium and above), the two levels every
  Gemini 3 model accepts;
* disabled, or effort "none": left out (Gemini's Pro models cannot turn
  thinking off; the model's default applies, thoughts stay hidden).
"""

from __future__ import annotations

from typing import Any

from llm_gateway.formats import policy
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.unified import ChatRequest, Reasoning, ThinkingMode

__all__ = ["parse_thinking", "render_thinking", "signs_calls"]

_LOW_EFFORTS = frozenset({"minimal", "low"})
MAX_BUDGET_GEMINI_2 = 24576


def _budget_generation(model: str) -> bool:
    """True for Gemini 1.x and 2.x models, which take budgets, not levels."""
    name = model.removeprefix("models/").lower()
    return name.startswith(("gemini-1", "gemini-2"))


def signs_calls(model: str) -> bool:
    """Whether the model requires thought signatures on function calls in the
    history (Gemini 3 and later; unknown names are treated as later)."""
    return not _budget_generation(model)


def render_thinking(req: ChatRequest) -> dict[str, Any] | None:
    r = req.reasoning
    if r is None:
        return None
    if r.thinking is ThinkingMode.DISABLED or r.effort == "none":
        policy.dropped("thinking", "disabled: Gemini's default applies, thoughts stay hidden")
        return None
    if r.thinking is ThinkingMode.ENABLED and r.budget_tokens is not None:
        budget = r.budget_tokens
        if _budget_generation(req.model) and budget > MAX_BUDGET_GEMINI_2:
            policy.dropped(
                "thinking.budget_tokens", f"capped at {MAX_BUDGET_GEMINI_2} for Gemini 2"
            )
            budget = MAX_BUDGET_GEMINI_2
        return {"thinkingBudget": budget, "includeThoughts": True}
    if r.effort is None:
        return {"includeThoughts": True}
    if _budget_generation(req.model):
        budget = policy.EFFORT_TO_BUDGET.get(r.effort, policy.EFFORT_TO_BUDGET["medium"])
        return {"thinkingBudget": budget, "includeThoughts": True}
    level = "low" if r.effort in _LOW_EFFORTS else "high"
    return {"thinkingLevel": level, "includeThoughts": True}


def parse_thinking(t: FieldReader | None) -> Reasoning | None:
    if t is None:
        return None
    level = t.opt_str("thinkingLevel")
    if level is not None:
        return Reasoning(ThinkingMode.ENABLED, None, level.lower())
    budget = t.opt_int("thinkingBudget", minimum=-1)
    if budget == 0:
        return Reasoning(ThinkingMode.DISABLED)
    if budget is not None and budget > 0:
        return Reasoning(ThinkingMode.ENABLED, budget)
    if budget == -1 or t.opt_bool("includeThoughts"):
        return Reasoning(ThinkingMode.ADAPTIVE)
    return None
