"""The Gemini format as the *client's*: what a Gemini client gets from other upstreams
and sends back (codec level; ``test_e2e_gemini_client.py`` runs it through the SDK)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from llm_gateway.formats.gemini_carry import carry_foreign_signature, read_foreign_signature
from llm_gateway.formats.registry import FORMATS

GEMINI = FORMATS["gemini-generate-content"]
ANTHROPIC = FORMATS["anthropic-messages"]
OPENAI = FORMATS["openai-chat"]
ANTHROPIC_SIGNATURE = "EqQBCkYIARgCKkBfakeSignature/With+Base64=="


def anthropic_answer() -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "Look it up.", "signature": ANTHROPIC_SIGNATURE},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"c": "P"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def test_an_anthropic_signature_rides_in_thought_signature_and_comes_back() -> None:
    answer = GEMINI.render_response(
        ANTHROPIC.parse_response(anthropic_answer()), model="claude-sonnet-4-5"
    )
    thought, call = answer["candidates"][0]["content"]["parts"]
    assert thought["thought"] is True and thought["text"] == "Look it up."
    signature = thought["thoughtSignature"]
    base64.b64decode(signature, validate=True)  # the SDKs hold it as bytes
    assert call == {"functionCall": {"name": "get_weather", "args": {"c": "P"}, "id": "toolu_01A"}}

    # the client's next turn, as the google-genai SDK writes it back
    second = {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {"role": "model", "parts": [thought, call]},
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "id": "toolu_01A",
                            "name": "get_weather",
                            "response": {"output": "sunny"},
                        }
                    }
                ],
            },
        ]
    }
    request = ANTHROPIC.render_request(GEMINI.parse_request(second))
    assistant, results = request["messages"][1:]
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "Look it up.",
        "signature": ANTHROPIC_SIGNATURE,
    }
    use = assistant["content"][1]
    assert (use["type"], use["name"]) == ("tool_use", "get_weather")
    assert results["content"][0]["tool_use_id"] == use["id"]


def test_a_carried_signature_survives_url_safe_base64_and_geminis_own_is_left_alone() -> None:
    carried = carry_foreign_signature(ANTHROPIC_SIGNATURE)
    url_safe = base64.urlsafe_b64encode(base64.b64decode(carried)).decode().rstrip("=")
    assert read_foreign_signature(carried) == ANTHROPIC_SIGNATURE
    assert read_foreign_signature(url_safe) == ANTHROPIC_SIGNATURE
    assert read_foreign_signature("CiQBcsjafGj0c2lnbmF0dXJlL2Zvcit0ZXN0cz09") is None
    assert read_foreign_signature("not base64 at all!") is None


def test_openai_tool_call_ids_reach_the_gemini_client_as_function_call_ids() -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"call_{n}",
                            "type": "function",
                            "function": {"name": "f", "arguments": f'{{"n": {n}}}'},
                        }
                        for n in (1, 2)
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    answer = GEMINI.render_response(OPENAI.parse_response(completion), model="gpt-4o")
    parts = answer["candidates"][0]["content"]["parts"]
    assert [p["functionCall"] for p in parts] == [
        {"name": "f", "args": {"n": 1}, "id": "call_1"},
        {"name": "f", "args": {"n": 2}, "id": "call_2"},
    ]
    assert answer["candidates"][0]["finishReason"] == "STOP"
    assert answer["modelVersion"] == "gpt-4o"


@pytest.mark.parametrize(
    ("fmt", "body", "count"),
    [
        (GEMINI, {"totalTokens": 42}, 42),
        (ANTHROPIC, {"input_tokens": 42}, 42),
        (GEMINI, {"input_tokens": 42}, None),
        (GEMINI, {"totalTokens": -1}, None),
        (ANTHROPIC, [42], None),
    ],
)
def test_token_count_answers_per_format(fmt: Any, body: Any, count: int | None) -> None:
    assert fmt.token_count.parse(body) == count
    if count is not None:
        assert fmt.token_count.parse(fmt.token_count.render(count)) == count


def test_the_model_field_of_each_format() -> None:
    assert GEMINI.model_field == "modelVersion"
    assert OPENAI.model_field == ANTHROPIC.model_field == "model"


def test_a_thinking_budget_without_an_output_limit_fits_anthropics_default() -> None:
    def thinking(model: str, generation: dict[str, Any]) -> Any:
        body = {
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": generation,
        }
        request = GEMINI.parse_request(body)
        from dataclasses import replace

        rendered = ANTHROPIC.render_request(replace(request, model=model))
        return rendered["max_tokens"], rendered.get("thinking")

    budget = {"thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": True}}
    # the Gemini CLI's request: a budget, no maxOutputTokens
    assert thinking("claude-sonnet-4-5", budget) == (
        64000,
        {"type": "enabled", "budget_tokens": 8192},
    )
    assert thinking("some-claude-alias", budget) == (
        4096,
        {"type": "enabled", "budget_tokens": 2048},
    )
    # an explicit output limit is the client's: its budget goes as given
    explicit = {**budget, "maxOutputTokens": 4000}
    assert thinking("some-claude-alias", explicit) == (
        4000,
        {"type": "enabled", "budget_tokens": 8192},
    )
