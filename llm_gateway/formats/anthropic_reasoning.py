"""Anthropic ``thinking`` / ``output_config.effort`` and the sampling fields they constrain.

Theory of operation: the Anthropic renderer hands the unified request and
the ``max_tokens`` it chose to ``render_reasoning``, which writes the
reasoning fields into the request body and says whether thinking ended up on;
``render_sampling`` then writes temperature / top_p / top_k, leaving out what
Anthropic rejects while thinking is on. Tables live in ``policy``.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.formats import policy
from llm_gateway.formats.unified import ChatRequest, ThinkingMode, ToolChoiceMode

__all__ = ["render_reasoning", "render_sampling"]


def render_reasoning(req: ChatRequest, out: dict[str, Any], max_tokens: int) -> bool:
    """Write ``thinking`` / ``output_config.effort``; True when thinking is on.

    * An OpenAI effort (ENABLED, no budget): see ``_render_effort``.
    * DISABLED: ``{"type": "disabled"}``, except OpenAI's effort "none", which
      leaves thinking out (off is the default; some models reject "disabled").
    * ENABLED with a budget, ADAPTIVE, or only an effort: as given (a budget
      the gateway's default ``max_tokens`` cannot hold is fitted under it).
    * Forced tool use (tool_choice any/tool) cannot be combined with thinking:
      thinking is left off.
    """
    r = req.reasoning
    if r is None:
        return False
    choice = req.tool_choice
    forced = choice is not None and choice.mode in (ToolChoiceMode.ANY, ToolChoiceMode.TOOL)
    if r.thinking is ThinkingMode.ENABLED and r.budget_tokens is None:
        return _render_effort(req, r.effort or "medium", out, max_tokens, forced)
    thinking: dict[str, Any] | None = None
    effort = r.effort
    if r.thinking is ThinkingMode.DISABLED:
        if effort == "none":
            policy.dropped("reasoning_effort", "'none': thinking stays off")
            effort = None
        else:
            thinking = {"type": "disabled"}
    elif r.thinking is not None and forced:
        policy.dropped("thinking", "Anthropic does not allow thinking with forced tool use")
    elif r.thinking is ThinkingMode.ENABLED:
        budget = r.budget_tokens
        if req.max_tokens is None and budget is not None and budget >= max_tokens:
            # a budget without an output limit (a Gemini client's thinkingBudget)
            # must fit under the default the gateway chose: as for an effort
            budget = policy.fit_budget(budget, max_tokens)
        if budget is None:
            policy.dropped("thinking", "the default max_tokens leaves no room for the budget")
        else:
            thinking = {"type": "enabled", "budget_tokens": budget}
    elif r.thinking is ThinkingMode.ADAPTIVE:
        thinking = {"type": "adaptive"}
    if thinking is not None:
        out["thinking"] = thinking
    if effort is not None:
        out.setdefault("output_config", {})["effort"] = effort
    return thinking is not None and thinking["type"] != "disabled"


def _render_effort(
    req: ChatRequest, effort: str, out: dict[str, Any], max_tokens: int, forced: bool
) -> bool:
    """An OpenAI reasoning_effort: on Claude 4.6+ ``adaptive`` thinking plus
    ``output_config.effort``; on older or unknown models a budget from
    ``policy.EFFORT_TO_BUDGET`` that fits under ``max_tokens``."""
    if forced:
        policy.dropped("reasoning_effort", "Anthropic does not allow thinking with forced tool use")
        return False
    if policy.supports_adaptive_thinking(req.model):
        out["thinking"] = {"type": "adaptive"}
        anthropic_effort = policy.anthropic_effort(effort)
        if anthropic_effort is None:
            policy.dropped("reasoning_effort", f"Anthropic has no {effort!r} effort")
        else:
            out["output_config"] = {"effort": anthropic_effort}
        return True
    budget = policy.effort_to_budget(effort, max_tokens)
    if budget is None:
        policy.dropped("reasoning_effort", "max_tokens leaves no room for a thinking budget")
        return False
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return True


def render_sampling(req: ChatRequest, out: dict[str, Any], thinking_on: bool) -> None:
    temperature, top_p, top_k = req.temperature, req.top_p, req.top_k
    if thinking_on:
        if temperature is not None and temperature != 1:
            policy.dropped("temperature", "Anthropic allows only the default with thinking on")
            temperature = None
        if top_k is not None:
            policy.dropped("top_k", "Anthropic does not allow top_k with thinking on")
            top_k = None
        if top_p is not None and top_p < 0.95:
            policy.dropped("top_p", "Anthropic allows only 0.95..1 with thinking on")
            top_p = None
    if temperature is not None:
        if temperature > policy.ANTHROPIC_MAX_TEMPERATURE:
            policy.dropped("temperature", "clamped to Anthropic's maximum of 1.0")
            temperature = policy.ANTHROPIC_MAX_TEMPERATURE
        out["temperature"] = temperature
    if top_p is not None:
        out["top_p"] = top_p
    if top_k is not None:
        out["top_k"] = top_k
