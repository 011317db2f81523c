"""One test per row of the no-counterpart policy table in docs/conversion.md.

Each test is registered under the row's id with ``@row(...)``;
``test_every_documented_row_has_a_test`` reads the table from the document and
fails when a row has no test (or a test names a row the document lacks).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.errors import InvalidRequest
from llm_gateway.formats import anthropic_messages as am
from llm_gateway.formats import openai_chat as oc
from llm_gateway.formats import openai_completions as cp

DOC = Path(__file__).parent.parent / "docs" / "conversion.md"
ROWS: set[str] = set()


def row(row_id: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(test: Callable[..., None]) -> Callable[..., None]:
        ROWS.add(row_id)
        return test

    return register


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}], **fields}


def anthropic(**fields: Any) -> dict[str, Any]:
    base = {"model": "gpt-4.1", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    return {**base, **fields}


def chat_to_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    return am.render_request(oc.parse_request(body))


def anthropic_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    return oc.render_request(am.parse_request(body))


def rejected(convert: Callable[[dict[str, Any]], object], body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        convert(body)
    assert caught.value.param == param
    assert caught.value.status == 400


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="llm_gateway.formats")
    return caplog


@contextmanager
def logs_drop(caplog: pytest.LogCaptureFixture, field: str) -> Iterator[None]:
    caplog.clear()
    yield
    messages = [r.getMessage() for r in caplog.records if r.name == "llm_gateway.formats"]
    assert any(field in m for m in messages), f"no debug line for {field}: {messages}"
    assert all(
        r.levelno == logging.DEBUG for r in caplog.records if r.name == "llm_gateway.formats"
    )


# -- OpenAI fields ---------------------------------------------------------------------


@row("chat.n")
def test_n_above_one_is_rejected() -> None:
    rejected(oc.parse_request, chat(n=2), "n")
    rejected(cp.parse_request, {"model": "m", "prompt": "x", "n": 3}, "n")
    assert "n" not in chat_to_anthropic(chat(n=1))


@row("chat.logprobs")
def test_logprobs_are_rejected() -> None:
    rejected(oc.parse_request, chat(logprobs=True), "logprobs")
    rejected(cp.parse_request, {"model": "m", "prompt": "x", "logprobs": 0}, "logprobs")
    assert "logprobs" not in chat_to_anthropic(chat(logprobs=False))


@row("chat.top_logprobs")
def test_top_logprobs_are_rejected() -> None:
    rejected(oc.parse_request, chat(top_logprobs=3), "top_logprobs")


def _openai_only_sampling(field: str, value: object, caplog: pytest.LogCaptureFixture) -> None:
    with logs_drop(caplog, field):
        out = chat_to_anthropic(chat(**{field: value}))
    assert field not in out
    # Between the two OpenAI formats the field survives.
    completions = cp.render_request(oc.parse_request(chat(**{field: value})))
    assert completions[field] == value
    assert (
        oc.render_request(cp.parse_request({"model": "m", "prompt": "p", field: value}))[field]
        == value
    )


@row("chat.seed")
def test_seed(debug_log: pytest.LogCaptureFixture) -> None:
    _openai_only_sampling("seed", 42, debug_log)


@row("chat.frequency_penalty")
def test_frequency_penalty(debug_log: pytest.LogCaptureFixture) -> None:
    _openai_only_sampling("frequency_penalty", 0.5, debug_log)


@row("chat.presence_penalty")
def test_presence_penalty(debug_log: pytest.LogCaptureFixture) -> None:
    _openai_only_sampling("presence_penalty", -1, debug_log)


@row("chat.logit_bias")
def test_logit_bias(debug_log: pytest.LogCaptureFixture) -> None:
    _openai_only_sampling("logit_bias", {"50256": -100, "1": 5}, debug_log)


@row("chat.response_format.json_object")
def test_json_object_is_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    with logs_drop(debug_log, "response_format"):
        out = chat_to_anthropic(chat(response_format={"type": "json_object"}))
    assert "output_config" not in out
    assert "output_config" not in chat_to_anthropic(chat(response_format={"type": "text"}))


@row("chat.response_format.json_schema")
def test_json_schema_keeps_only_the_schema(debug_log: pytest.LogCaptureFixture) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    spec = {"name": "thing", "description": "d", "strict": True, "schema": schema}
    with logs_drop(debug_log, "response_format.json_schema"):
        out = chat_to_anthropic(chat(response_format={"type": "json_schema", "json_schema": spec}))
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


@row("chat.service_tier")
def test_service_tier_mapping(debug_log: pytest.LogCaptureFixture) -> None:
    assert chat_to_anthropic(chat(service_tier="auto"))["service_tier"] == "auto"
    assert chat_to_anthropic(chat(service_tier="default"))["service_tier"] == "standard_only"
    with logs_drop(debug_log, "service_tier"):
        assert "service_tier" not in chat_to_anthropic(chat(service_tier="flex"))
    assert anthropic_to_chat(anthropic(service_tier="standard_only"))["service_tier"] == "default"
    assert anthropic_to_chat(anthropic(service_tier="auto"))["service_tier"] == "auto"


@row("chat.audio")
def test_audio_is_rejected() -> None:
    rejected(oc.parse_request, chat(audio={"voice": "alloy", "format": "wav"}), "audio")
    history = [{"role": "assistant", "audio": {"id": "audio_1"}}, {"role": "user", "content": "x"}]
    rejected(oc.parse_request, chat(messages=history), "messages[0].audio")


@row("chat.modalities")
def test_non_text_modalities_are_rejected() -> None:
    rejected(oc.parse_request, chat(modalities=["text", "audio"]), "modalities")
    assert "modalities" not in chat_to_anthropic(chat(modalities=["text"]))


@row("chat.input_audio")
def test_input_audio_parts_are_rejected() -> None:
    part = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    body = chat(messages=[{"role": "user", "content": [part]}])
    rejected(oc.parse_request, body, "messages[0].content[0].type")


@row("chat.file_id")
def test_file_ids_are_rejected() -> None:
    part = {"type": "file", "file": {"file_id": "file-abc"}}
    body = chat(messages=[{"role": "user", "content": [part]}])
    rejected(oc.parse_request, body, "messages[0].content[0].file.file_id")


@row("chat.store")
def test_platform_fields_are_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    fields = {
        "store": True,
        "metadata": {"k": "v"},
        "prediction": {"type": "content", "content": "x"},
        "verbosity": "low",
        "prompt_cache_key": "key",
        "prompt_cache_retention": "24h",
    }
    for name, value in fields.items():
        with logs_drop(debug_log, name):
            out = chat_to_anthropic(chat(**{name: value}))
        assert name not in out
        assert out["messages"] == [{"role": "user", "content": "hi"}]


@row("chat.safety_identifier")
def test_safety_identifier_becomes_user() -> None:
    assert chat_to_anthropic(chat(safety_identifier="sid"))["metadata"] == {"user_id": "sid"}
    both = chat_to_anthropic(chat(safety_identifier="sid", user="u"))
    assert both["metadata"] == {"user_id": "u"}


@row("chat.functions")
def test_deprecated_functions_api_is_rejected() -> None:
    rejected(oc.parse_request, chat(functions=[{"name": "f"}]), "functions")
    rejected(oc.parse_request, chat(function_call="auto"), "function_call")
    history = [{"role": "function", "name": "f", "content": "1"}]
    rejected(oc.parse_request, chat(messages=history), "messages[0].role")
    call = [{"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]
    rejected(oc.parse_request, chat(messages=call), "messages[0].function_call")


@row("chat.web_search_options")
def test_web_search_options_are_rejected() -> None:
    rejected(oc.parse_request, chat(web_search_options={}), "web_search_options")


@row("chat.custom_tools")
def test_custom_tools_are_rejected() -> None:
    rejected(
        oc.parse_request, chat(tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools[0].type"
    )
    allowed = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}
    rejected(oc.parse_request, chat(tool_choice=allowed), "tool_choice.type")


@row("chat.name")
def test_participant_names_are_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    body = chat(messages=[{"role": "user", "name": "alice", "content": "hi"}])
    with logs_drop(debug_log, "messages[0].name"):
        out = chat_to_anthropic(body)
    assert out["messages"] == [{"role": "user", "content": "hi"}]


@row("chat.image_detail")
def test_image_detail_is_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    part = {"type": "image_url", "image_url": {"url": "https://e.com/a.png", "detail": "low"}}
    with logs_drop(debug_log, "detail"):
        out = chat_to_anthropic(chat(messages=[{"role": "user", "content": [part]}]))
    image = {"type": "image", "source": {"type": "url", "url": "https://e.com/a.png"}}
    assert out["messages"] == [{"role": "user", "content": [image]}]


@row("chat.temperature")
def test_temperature_is_clamped_to_one(debug_log: pytest.LogCaptureFixture) -> None:
    with logs_drop(debug_log, "temperature"):
        assert chat_to_anthropic(chat(temperature=1.7))["temperature"] == 1.0
    assert chat_to_anthropic(chat(temperature=0.5))["temperature"] == 0.5


@row("chat.reasoning_effort_none")
def test_reasoning_effort_none_leaves_thinking_out(debug_log: pytest.LogCaptureFixture) -> None:
    for model in ("claude-opus-4-7", "claude-sonnet-4-5"):
        with logs_drop(debug_log, "reasoning_effort"):
            out = chat_to_anthropic(chat(model=model, reasoning_effort="none"))
        assert "thinking" not in out
        assert "output_config" not in out


@row("chat.max_tokens_both")
def test_max_completion_tokens_wins(debug_log: pytest.LogCaptureFixture) -> None:
    with logs_drop(debug_log, "max_tokens"):
        out = chat_to_anthropic(chat(max_tokens=10, max_completion_tokens=20))
    assert out["max_tokens"] == 20
    assert chat_to_anthropic(chat(max_tokens=10))["max_tokens"] == 10


@row("chat.reasoning_content")
def test_reasoning_content_in_history_is_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    history = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b", "reasoning_content": "thought"},
        {"role": "user", "content": "c"},
    ]
    with logs_drop(debug_log, "reasoning_content"):
        out = chat_to_anthropic(chat(messages=history))
    assert out["messages"][1] == {"role": "assistant", "content": "b"}


@row("chat.stream_usage")
def test_stream_include_usage_is_remembered() -> None:
    asked = oc.parse_request(chat(stream=True, stream_options={"include_usage": True}))
    assert asked.stream_include_usage is True
    assert "stream_options" not in am.render_request(asked)
    assert oc.parse_request(chat(stream=True)).stream_include_usage is False
    # An Anthropic client always gets usage, so an OpenAI upstream is asked for it.
    streamed = anthropic_to_chat(anthropic(stream=True))
    assert streamed["stream_options"] == {"include_usage": True}


# -- legacy completions ------------------------------------------------------------------


def completion(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "prompt": "Say this is a test", **fields}


@row("completions.prompt_list")
def test_prompt_batches_are_rejected() -> None:
    rejected(cp.parse_request, completion(prompt=["a", "b"]), "prompt")
    rejected(cp.parse_request, completion(prompt=[1, 2, 3]), "prompt")
    rejected(cp.parse_request, completion(prompt=[]), "prompt")
    assert cp.parse_request(completion(prompt=["only"])).messages[0].parts[0].text == "only"  # type: ignore[union-attr]


@row("completions.echo")
def test_echo_is_rejected() -> None:
    rejected(cp.parse_request, completion(echo=True), "echo")
    cp.parse_request(completion(echo=False))


@row("completions.suffix")
def test_suffix_is_rejected() -> None:
    rejected(cp.parse_request, completion(suffix="\n}"), "suffix")


@row("completions.best_of")
def test_best_of_is_rejected() -> None:
    rejected(cp.parse_request, completion(best_of=2), "best_of")
    cp.parse_request(completion(best_of=1))


@row("completions.render")
def test_only_single_prompts_render_as_completions(debug_log: pytest.LogCaptureFixture) -> None:
    def to_completions(body: dict[str, Any]) -> dict[str, Any]:
        return cp.render_request(oc.parse_request(body))

    system = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    rejected(to_completions, chat(messages=system), "messages")
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    rejected(
        to_completions, chat(messages=[*history, {"role": "user", "content": "c"}]), "messages"
    )
    tool = {"type": "function", "function": {"name": "f"}}
    rejected(to_completions, chat(tools=[tool]), "tools")
    image = {"type": "image_url", "image_url": {"url": "https://e.com/a.png"}}
    rejected(
        to_completions, chat(messages=[{"role": "user", "content": [image]}]), "messages[0].content"
    )
    rejected(lambda b: cp.render_request(am.parse_request(b)), anthropic(system="s"), "messages")
    with logs_drop(debug_log, "reasoning"):
        out = to_completions(
            chat(
                reasoning_effort="low", response_format={"type": "json_object"}, service_tier="flex"
            )
        )
    assert out == {"model": "claude-sonnet-4-5", "prompt": "hi"}


# -- Anthropic fields ------------------------------------------------------------------------


@row("anthropic.top_k")
def test_top_k_is_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    with logs_drop(debug_log, "top_k"):
        out = anthropic_to_chat(anthropic(top_k=40))
    assert "top_k" not in out


@row("anthropic.cache_control")
def test_cache_control_is_dropped_towards_openai(debug_log: pytest.LogCaptureFixture) -> None:
    marker = {"type": "ephemeral"}
    body = anthropic(
        system=[{"type": "text", "text": "sys", "cache_control": marker}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": marker}]}
        ],
        tools=[{"name": "t", "input_schema": {"type": "object"}, "cache_control": marker}],
    )
    with logs_drop(debug_log, "cache_control"):
        out = anthropic_to_chat(body)
    assert "cache_control" not in repr(out)
    assert out["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
    ]


@row("anthropic.thinking_blocks")
def test_thinking_blocks_are_dropped_towards_openai(debug_log: pytest.LogCaptureFixture) -> None:
    history = [
        {"role": "user", "content": "a"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "b"},
            ],
        },
        {"role": "user", "content": "c"},
    ]
    with logs_drop(debug_log, "thinking"):
        out = anthropic_to_chat(anthropic(messages=history))
    assert out["messages"][1] == {"role": "assistant", "content": "b"}


@row("anthropic.container")
def test_container_is_rejected() -> None:
    rejected(am.parse_request, anthropic(container="container_1"), "container")


@row("anthropic.mcp_servers")
def test_mcp_servers_are_rejected() -> None:
    server = {"type": "url", "url": "https://mcp.example.com", "name": "x"}
    rejected(am.parse_request, anthropic(mcp_servers=[server]), "mcp_servers")


@row("anthropic.context_management")
def test_context_management_is_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    edits = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    with logs_drop(debug_log, "context_management"):
        out = anthropic_to_chat(anthropic(context_management=edits))
    assert "context_management" not in out


@row("anthropic.server_tools")
def test_server_tools_are_rejected() -> None:
    tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    rejected(am.parse_request, anthropic(tools=[tool]), "tools[0].type")


@row("anthropic.blocks")
def test_blocks_without_counterpart_are_rejected() -> None:
    server_use = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    body = anthropic(messages=[{"role": "assistant", "content": [server_use]}])
    rejected(am.parse_request, body, "messages[0].content[0].type")
    text_doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "x"},
    }
    body = anthropic(messages=[{"role": "user", "content": [text_doc]}])
    rejected(am.parse_request, body, "messages[0].content[0].source.type")
    file_image = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
    body = anthropic(messages=[{"role": "user", "content": [file_image]}])
    rejected(am.parse_request, body, "messages[0].content[0].source.type")


@row("anthropic.metadata")
def test_other_metadata_is_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    with logs_drop(debug_log, "metadata.session"):
        out = anthropic_to_chat(anthropic(metadata={"user_id": "u", "session": "s"}))
    assert out["user"] == "u"


@row("anthropic.citations")
def test_citations_are_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    block = {"type": "text", "text": "cited", "citations": [{"type": "char_location"}]}
    with logs_drop(debug_log, "citations"):
        out = anthropic_to_chat(anthropic(messages=[{"role": "user", "content": [block]}]))
    assert out["messages"] == [{"role": "user", "content": "cited"}]


def _tool_turn(*results: dict[str, Any]) -> dict[str, Any]:
    call = {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
    return anthropic(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": list(results)},
        ]
    )


@row("anthropic.is_error")
def test_is_error_becomes_a_prefix() -> None:
    out = anthropic_to_chat(
        _tool_turn(
            {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True}
        )
    )
    assert out["messages"][-1] == {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"}
    out = anthropic_to_chat(
        _tool_turn({"type": "tool_result", "tool_use_id": "t1", "is_error": True})
    )
    assert out["messages"][-1] == {"role": "tool", "tool_call_id": "t1", "content": "Error"}
    out = anthropic_to_chat(
        _tool_turn({"type": "tool_result", "tool_use_id": "t1", "content": "fine"})
    )
    assert out["messages"][-1] == {"role": "tool", "tool_call_id": "t1", "content": "fine"}


@row("anthropic.tool_result_images")
def test_tool_result_images_move_to_a_user_message(debug_log: pytest.LogCaptureFixture) -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://e.com/shot.png"}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": [image]}
    with logs_drop(debug_log, "tool_result image"):
        out = anthropic_to_chat(_tool_turn(result))
    assert out["messages"][-2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": ""},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://e.com/shot.png"}}],
        },
    ]


@row("anthropic.thinking_config")
def test_thinking_without_effort_sends_no_reasoning_effort(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    for thinking in ({"type": "adaptive"}, {"type": "disabled"}):
        with logs_drop(debug_log, "thinking"):
            out = anthropic_to_chat(anthropic(thinking=thinking))
        assert "reasoning_effort" not in out
    adaptive = anthropic(thinking={"type": "adaptive"}, output_config={"effort": "max"})
    assert anthropic_to_chat(adaptive)["reasoning_effort"] == "xhigh"


@row("anthropic.document_url")
def test_documents_by_url_cannot_go_to_openai() -> None:
    doc = {"type": "document", "source": {"type": "url", "url": "https://e.com/a.pdf"}}
    body = anthropic(messages=[{"role": "user", "content": [doc]}])
    rejected(anthropic_to_chat, body, "document.source")


@row("anthropic.system_mid")
def test_system_messages_inside_messages() -> None:
    # Claude Code style: role "system" inside an Anthropic request's messages.
    body = anthropic(
        model="claude-sonnet-4-5",
        system="top",
        messages=[
            {"role": "system", "content": "leading"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": [{"type": "text", "text": "later"}]},
        ],
    )
    out = am.render_request(am.parse_request(body))
    assert out["system"] == [{"type": "text", "text": "top"}, {"type": "text", "text": "leading"}]
    assert out["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "<system-reminder>\nlater\n</system-reminder>"},
    ]
    # Towards OpenAI the messages keep their role and place.
    chat_out = anthropic_to_chat(body)
    assert [m["role"] for m in chat_out["messages"]] == [
        "system",
        "system",
        "user",
        "assistant",
        "system",
    ]


@row("anthropic.thinking_constraints")
def test_sampling_fields_incompatible_with_thinking(debug_log: pytest.LogCaptureFixture) -> None:
    body = chat(model="claude-sonnet-4-5", reasoning_effort="low", temperature=0.5, top_p=0.9)
    with logs_drop(debug_log, "temperature"):
        out = chat_to_anthropic(body)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "temperature" not in out and "top_p" not in out
    kept = chat_to_anthropic(chat(model="claude-sonnet-4-5", reasoning_effort="low", top_p=0.97))
    assert kept["top_p"] == 0.97
    tool = {"type": "function", "function": {"name": "f"}}
    forced = chat(reasoning_effort="high", tools=[tool], tool_choice="required", temperature=0.3)
    with logs_drop(debug_log, "forced tool use"):
        out = chat_to_anthropic(forced)
    assert "thinking" not in out and "output_config" not in out
    assert out["temperature"] == 0.3


@row("anthropic.empty_content")
def test_empty_user_message_is_rejected() -> None:
    body = chat(messages=[{"role": "user", "content": ""}])
    rejected(chat_to_anthropic, body, "messages")
    # Empty assistant/system messages are skipped instead.
    history = [
        {"role": "system", "content": ""},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "b"},
    ]
    out = chat_to_anthropic(chat(messages=history))
    assert "system" not in out
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


# -- responses -------------------------------------------------------------------------------------


def _anthropic_response(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "done"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    return {**base, **fields}


@row("response.stop_sequence")
def test_stop_sequence_has_no_openai_field() -> None:
    resp = am.parse_response(_anthropic_response(stop_reason="stop_sequence", stop_sequence="###"))
    out = oc.render_response(resp, model="gpt")
    assert out["choices"][0]["finish_reason"] == "stop"
    assert "###" not in repr(out)


@row("response.choices")
def test_only_the_first_choice_is_converted(debug_log: pytest.LogCaptureFixture) -> None:
    body = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "first"},
                "finish_reason": "stop",
            },
            {
                "index": 1,
                "message": {"role": "assistant", "content": "second"},
                "finish_reason": "stop",
            },
        ],
    }
    with logs_drop(debug_log, "choices[1:]"):
        resp = oc.parse_response(body)
    assert am.render_response(resp, model="claude")["content"] == [
        {"type": "text", "text": "first"}
    ]


@row("response.server_blocks")
def test_server_tool_blocks_in_responses_are_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    content = [
        {
            "type": "server_tool_use",
            "id": "srvtoolu_1",
            "name": "web_search",
            "input": {"query": "q"},
        },
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "answer"},
    ]
    with logs_drop(debug_log, "server_tool_use"):
        resp = am.parse_response(_anthropic_response(content=content))
    assert oc.render_response(resp, model="gpt")["choices"][0]["message"]["content"] == "answer"


@row("any.unknown")
def test_unknown_fields_are_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    with logs_drop(debug_log, "frobnicate"):
        assert "frobnicate" not in chat_to_anthropic(chat(frobnicate=1))
    with logs_drop(debug_log, "frobnicate"):
        assert "frobnicate" not in anthropic_to_chat(anthropic(frobnicate=1))
    with logs_drop(debug_log, "frobnicate"):
        cp.parse_request(completion(frobnicate=1))


# -- the table itself ------------------------------------------------------------------------------


def _documented_rows() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Policy for fields without a counterpart", 1)[1]
    return set(re.findall(r"^\| ([a-z_]+\.[a-z_.]+) \|", section, flags=re.MULTILINE))


def test_every_documented_row_has_a_test() -> None:
    documented = _documented_rows()
    assert len(documented) > 40
    assert documented == ROWS
