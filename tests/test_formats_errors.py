"""Error bodies in each format, and upstream error bodies read back (error_relay)."""

from __future__ import annotations

import json

import pytest

from llm_gateway.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from llm_gateway.formats import anthropic_messages as am
from llm_gateway.formats import openai_chat as oc
from llm_gateway.formats import openai_completions as cp
from llm_gateway.formats.error_relay import kind_for_status, redact_secrets

# (kind, status, Anthropic type, OpenAI type, OpenAI code) as documented in docs/conversion.md
TABLE = [
    ("invalid_request_error", 400, "invalid_request_error", "invalid_request_error", None),
    (
        "authentication_error",
        401,
        "authentication_error",
        "invalid_request_error",
        "invalid_api_key",
    ),
    ("permission_error", 403, "permission_error", "invalid_request_error", "permission_denied"),
    ("not_found_error", 404, "not_found_error", "invalid_request_error", "not_found"),
    ("request_too_large", 413, "request_too_large", "invalid_request_error", "request_too_large"),
    ("rate_limit_error", 429, "rate_limit_error", "rate_limit_error", "rate_limit_exceeded"),
    ("billing_error", 402, "billing_error", "insufficient_quota", "insufficient_quota"),
    (
        "overloaded_error",
        529,
        "overloaded_error",
        "service_unavailable_error",
        "server_is_overloaded",
    ),
    ("timeout_error", 504, "timeout_error", "server_error", "timeout"),
    ("api_error", 500, "api_error", "server_error", None),
]


@pytest.mark.parametrize(("kind", "status", "anthropic_type", "openai_type", "code"), TABLE)
def test_render_error_shapes(
    kind: str, status: int, anthropic_type: str, openai_type: str, code: str | None
) -> None:
    assert am.render_error(status, kind, "went wrong") == {
        "type": "error",
        "error": {"type": anthropic_type, "message": "went wrong"},
    }
    for codec in (oc, cp):
        assert codec.render_error(status, kind, "went wrong", "messages[0]") == {
            "error": {
                "message": "went wrong",
                "type": openai_type,
                "param": "messages[0]",
                "code": code,
            }
        }


@pytest.mark.parametrize(("kind", "status", "anthropic_type", "openai_type", "code"), TABLE)
def test_rendered_errors_read_back_as_the_same_kind(
    kind: str, status: int, anthropic_type: str, openai_type: str, code: str | None
) -> None:
    for codec in (am, oc):
        body = json.dumps(codec.render_error(status, kind, "msg")).encode()
        assert codec.parse_error(status, body) == (kind, "msg")


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("bad", param="x"),
        AuthenticationError("no key"),
        PermissionDenied("no"),
        NotFound("where"),
        PayloadTooLarge("big"),
        RateLimited("slow down"),
        ServiceUnavailable("busy"),
        UpstreamError("broken"),
        UpstreamTimeout("slow"),
    ],
)
def test_every_gateway_error_kind_has_a_documented_shape(error: GatewayError) -> None:
    kinds = {row[0] for row in TABLE}
    assert error.kind in kinds
    assert am.render_error(error.status, error.kind, error.message)["error"]["type"] == error.kind


def test_unknown_kinds_fall_back_by_status() -> None:
    assert am.render_error(418, "teapot", "m")["error"]["type"] == "invalid_request_error"
    assert am.render_error(503, "teapot", "m")["error"]["type"] == "overloaded_error"
    assert oc.render_error(502, "teapot", "m")["error"]["type"] == "server_error"
    assert oc.render_error(409, "teapot", "m")["error"]["type"] == "invalid_request_error"


def test_anthropic_error_carries_param_in_the_message() -> None:
    body = am.render_error(400, "invalid_request_error", "must be a string", "messages[1].content")
    assert body["error"]["message"] == "messages[1].content: must be a string"


def test_parse_openai_errors() -> None:
    body = b'{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}'
    assert oc.parse_error(429, body) == ("billing_error", "You exceeded your current quota")
    body = b'{"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}'
    assert oc.parse_error(429, body) == ("rate_limit_error", "Rate limit reached")
    assert oc.parse_error(400, b'{"error": "bad things"}') == (
        "invalid_request_error",
        "bad things",
    )
    assert oc.parse_error(404, b'{"error": {"message": "The model does not exist"}}') == (
        "not_found_error",
        "The model does not exist",
    )


def test_parse_anthropic_errors() -> None:
    body = b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "req_1"}'
    assert am.parse_error(529, body) == ("overloaded_error", "Overloaded")
    body = b'{"type": "error", "error": {"type": "brand_new_error", "message": "Hmm"}}'
    assert am.parse_error(409, body) == ("invalid_request_error", "Hmm")


@pytest.mark.parametrize(
    "body", [b"", b"<html>Bad Gateway</html>", b"\xff\xfe", b"[1, 2]", b'{"error": 5}']
)
def test_non_json_error_bodies_fall_back_to_the_status(body: bytes) -> None:
    for codec in (am, oc, cp):
        assert codec.parse_error(502, body) == ("api_error", "upstream returned HTTP 502")
        assert codec.parse_error(429, body)[0] == "rate_limit_error"


def test_relayed_messages_mask_api_keys_and_are_bounded() -> None:
    message = "Incorrect API key provided: sk-proj-abcDEF1234567890xyz. Also Bearer abcdefghijklmnop and sk-ant-api03-SECRETSECRET"
    body = json.dumps({"error": {"message": message, "code": "invalid_api_key"}}).encode()
    kind, relayed = oc.parse_error(401, body)
    assert kind == "authentication_error"
    assert "abcDEF1234567890xyz" not in relayed
    assert "abcdefghijklmnop" not in relayed
    assert "SECRETSECRET" not in relayed
    assert relayed == "Incorrect API key provided: sk-proj-***. Also Bearer *** and sk-ant-***"
    long = json.dumps(
        {"type": "error", "error": {"type": "api_error", "message": "x" * 5000}}
    ).encode()
    assert len(am.parse_error(500, long)[1]) == 2000


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact_secrets("the task-list is ready; sk-1") == "the task-list is ready; sk-1"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_kind_for_status(status: int, kind: str) -> None:
    assert kind_for_status(status) == kind
