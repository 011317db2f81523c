"""A conservative local count of a request's input tokens, for upstreams with no counter
(`/v1/messages/count_tokens`, `/v1/responses/input_tokens`, `:countTokens`).

Theory of operation: clients use a token count to decide when to compact a
conversation, so an undercount becomes a hard "prompt too long" later while an
overcount only compacts a little early. The estimate therefore errs high: it
walks the text a byte-level BPE tokeniser would see and charges each piece at
least what such tokenisers spend on it (checked against published tokeniser
examples in the tests):

* a run of ASCII letters: one token per three letters, rounded up (common
  words are one token, rare ones split: ``tiktoken`` is three);
* every digit one token (some tokenisers split numbers digit by digit);
* every other ASCII symbol one token (code's punctuation);
* whitespace: a single space before a word or symbol is free (it joins the
  token that follows); any other run costs one token per eight characters,
  at least one;
* every other character half a token per UTF-8 byte (CJK: 1.5 per
  character, where tokenisers spend one or two);
* per message four tokens of framing, three to prime the answer;
* per image (or PDF page) the most a model spends on one: 1,600 (an image) and
  4,600 (a page: its text and its image);
* with tools, their definitions as JSON plus the 346 tokens of tool-use
  instructions Anthropic documents adding.

The response says it is an estimate (``x-llm-gateway-estimate: true``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re

from ..formats.unified import (
    Base64Source,
    ChatRequest,
    DocumentPart,
    ImagePart,
    Part,
    RedactedThinkingPart,
    TextPart,
    ThinkingPart,
    ToolResultPart,
    ToolUsePart,
)

__all__ = ["estimate_input_tokens", "estimate_text_tokens"]

MESSAGE_FRAMING = 4
ANSWER_PRIMING = 3
IMAGE_TOKENS = 1_600
PDF_PAGE_TOKENS = 4_600
#: the tool-use system prompt Anthropic adds when tools are given (its pricing docs)
TOOL_USE_PROMPT = 346
_LETTERS_PER_TOKEN = 3
_SPACES_PER_TOKEN = 8

#: ASCII letter runs, digits, single spaces before a non-space, other whitespace
#: runs, and any other character
_PIECES = re.compile(r"(?P<free> (?=[^\s0-9]))|[A-Za-z]+|[0-9]|\s+|.", re.DOTALL)
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def estimate_text_tokens(text: str) -> int:
    """At least as many tokens as common BPE tokenisers spend on ``text``."""
    total = 0.0
    for found in _PIECES.finditer(text):
        if found.group("free") is not None:
            continue  # a space joins the word or symbol after it
        piece = found.group()
        first = piece[0]
        if first.isascii() and first.isalpha():
            total += math.ceil(len(piece) / _LETTERS_PER_TOKEN)
        elif first.isspace() and piece != " ":
            total += math.ceil(len(piece) / _SPACES_PER_TOKEN)
        elif first.isascii():
            total += 1  # a digit, a symbol, a lone space before a digit
        else:
            total += len(first.encode("utf-8", "surrogatepass")) / 2
    return math.ceil(total)


def _pdf_pages(part: DocumentPart) -> int:
    """The pages of an inline PDF (a document by URL counts as one page)."""
    source = part.source
    if not isinstance(source, Base64Source):
        return 1
    try:
        data = base64.b64decode(source.data)
    except (binascii.Error, ValueError):
        return 1
    return max(1, len(_PDF_PAGE.findall(data)))


def _part_tokens(part: Part) -> int:
    if isinstance(part, TextPart):
        return estimate_text_tokens(part.text)
    if isinstance(part, ThinkingPart):
        return estimate_text_tokens(part.text)
    if isinstance(part, RedactedThinkingPart):
        return math.ceil(len(part.data) / 2)
    if isinstance(part, ImagePart):
        return IMAGE_TOKENS
    if isinstance(part, DocumentPart):
        return PDF_PAGE_TOKENS * _pdf_pages(part)
    if isinstance(part, ToolUsePart):
        return estimate_text_tokens(part.name) + estimate_text_tokens(part.input.text)
    if isinstance(part, ToolResultPart):
        return MESSAGE_FRAMING + sum(_part_tokens(c) for c in part.content)
    return 0


def estimate_input_tokens(request: ChatRequest) -> int:
    """A conservative count of ``request``'s input: system, messages, tools."""
    total = ANSWER_PRIMING
    if request.system:
        total += MESSAGE_FRAMING + sum(estimate_text_tokens(p.text) for p in request.system)
    for message in request.messages:
        total += MESSAGE_FRAMING + sum(_part_tokens(p) for p in message.parts)
    if request.tools:
        total += TOOL_USE_PROMPT
        for tool in request.tools:
            total += MESSAGE_FRAMING + estimate_text_tokens(tool.name)
            total += estimate_text_tokens(tool.description or "")
            if tool.input_schema is not None:
                total += estimate_text_tokens(tool.input_schema.text)
    if request.response_format is not None and request.response_format.schema is not None:
        total += estimate_text_tokens(request.response_format.schema.text)
    return total
