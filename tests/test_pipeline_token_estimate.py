"""The local token estimate never undercounts published tokeniser examples.

Reference counts (true counts, which the estimate must reach or exceed):

* OpenAI Cookbook, "How to count tokens with tiktoken": ``"tiktoken is great!"``
  is 6 tokens in cl100k_base; ``"antidisestablishmentarianism"`` 6 (5 in
  gpt2); ``"2 + 2 = 4"`` 7 (5 in gpt2); ``"お誕生日おめでとう"`` 9 (14 in
  gpt2); its six-message chat example is 129 prompt tokens for gpt-4-0613.
* Google's Gemini API reference (``models.countTokens``): ``"The quick brown
  fox jumps over the lazy dog."`` is 10 tokens.

Code has no published count to check against here. The snippet below is held
to the number of pieces cl100k_base's pre-tokeniser cuts it into (its
published split pattern; BPE never merges across pieces, so the true count is
at least that), with a quarter more for identifiers split inside a piece.
"""

from __future__ import annotations

import base64
import math
import re

import pytest

from llm_gateway.formats.registry import FORMATS
from llm_gateway.pipeline.token_estimate import (
    IMAGE_TOKENS,
    PDF_PAGE_TOKENS,
    TOOL_USE_PROMPT,
    estimate_input_tokens,
    estimate_text_tokens,
)

PUBLISHED = [
    ("tiktoken is great!", 6),
    ("antidisestablishmentarianism", 6),
    ("2 + 2 = 4", 7),
    ("お誕生日おめでとう", 14),  # gpt2's count, the highest published
    ("The quick brown fox jumps over the lazy dog.", 10),
]

CODE = '''def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)
'''


@pytest.mark.parametrize(("text", "true_count"), PUBLISHED)
def test_published_examples_are_not_undercounted(text: str, true_count: int) -> None:
    assert estimate_text_tokens(text) >= true_count


#: cl100k_base's pre-tokeniser pattern (tiktoken), with \p{L} / \p{N} as ASCII classes
_CL100K_SPLIT = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}"
    r"| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def test_code_is_not_undercounted() -> None:
    pieces = _CL100K_SPLIT.findall(CODE)
    assert "".join(pieces) == CODE
    assert estimate_text_tokens(CODE) >= math.ceil(len(pieces) * 1.25)


def test_cjk_costs_more_than_a_token_per_character() -> None:
    chinese = "人工智能正在改变世界"
    assert estimate_text_tokens(chinese) >= len(chinese)
    assert estimate_text_tokens("안녕하세요") >= 5


def test_the_cookbook_chat_example_is_not_undercounted() -> None:
    lines = [
        "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
        "New synergies will help drive top-line growth.",
        "Things working well together will increase revenue.",
        "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
        "Let's talk later when we're less busy about how to do better.",
    ]
    messages = [{"role": "system", "content": line} for line in lines]
    messages.append(
        {
            "role": "user",
            "content": "This late pivot means we don't have time to boil the ocean for the "
            "client deliverable.",
        }
    )
    request = FORMATS["openai-chat"].parse_request({"model": "gpt-4", "messages": messages})
    assert estimate_input_tokens(request) >= 129


def _anthropic(body: dict[str, object]) -> int:
    base = {"model": "m", "max_tokens": 1}
    return estimate_input_tokens(FORMATS["anthropic-messages"].parse_request({**base, **body}))


def test_system_tools_images_and_pdf_pages_all_count() -> None:
    hello = [{"role": "user", "content": "hi"}]
    plain = _anthropic({"messages": hello})
    assert _anthropic({"messages": hello, "system": "Be brief. " * 40}) > plain + 40
    tool = {"name": "t", "input_schema": {"type": "object", "properties": {}}}
    assert _anthropic({"messages": hello, "tools": [tool]}) > plain + TOOL_USE_PROMPT
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    pdf = b"%PDF-1.4 /Type /Pages /Type /Page x /Type /Page y /Type /Page z"
    document = {
        "type": "base64",
        "media_type": "application/pdf",
        "data": base64.b64encode(pdf).decode(),
    }
    blocks = [{"type": "image", "source": image}, {"type": "document", "source": document}]
    rich = _anthropic({"messages": [{"role": "user", "content": blocks}]})
    assert rich >= IMAGE_TOKENS + 3 * PDF_PAGE_TOKENS


def test_a_tool_round_trip_counts_calls_and_results() -> None:
    history = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "run", "input": {"cmd": "ls -la"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a.txt b.txt"}],
        },
    ]
    assert _anthropic({"messages": history}) > _anthropic({"messages": history[:1]}) + 15
