"""One request to one upstream account: the body to send, and how to read the answer.

Theory of operation: ``prepare`` decides, from the client's format and the
format the account's provider speaks, between *passthrough* (same format: the
client's bytes go upstream untouched, or with only the model renamed) and
*conversion* (parse the client's body into the unified form, render it in the
upstream's format). The resulting ``Prepared`` remembers that choice, and the
relay functions use it to turn the upstream's answer (a body, an error, a
stream) back into the client's format. Only the format registries know JSON
shapes; this module moves whole bodies between them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..config.schema import Config, OAuthSettings, ProxyConfig, UpstreamAccount
from ..errors import UpstreamError
from ..formats.error_relay import Redactor, decode_json, kind_for_status, relay_message
from ..formats.ids import response_id
from ..formats.registry import FORMATS
from ..formats.unified import ChatRequest, Usage
from ..json_text import dumps_bytes
from ..providers.base import Operation, TokenCounter, UpstreamTarget
from ..providers.registry import get_provider
from ..server.messages import Request, Response, json_response
from ..streaming.json_array import JSONArrayFramer
from ..streaming.registry import STREAM_FORMATS
from ..streaming.replay import events_of
from ..upstream.timeouts import Timeouts
from .call import ClientCall
from .quirks import adjust_outgoing, ask_for_stream_usage, cap_output_tokens
from .streams import StreamPipe, make_stream_pipe
from .usage import usage_of_body

__all__ = [
    "ACCOUNT_HEADER",
    "Prepared",
    "account_header",
    "error_answer",
    "prepare",
    "relay_body",
    "relay_error",
    "timeouts_of",
]

_USER_AGENT = f"llm-gateway/{__version__}"
_RELAYED_ERROR_HEADERS = ("retry-after", "retry-after-ms")
#: names the account that served a response (its name, never its key)
ACCOUNT_HEADER = "x-llm-gateway-account"
#: printable ASCII an account name keeps in the header; the rest is %-encoded
_HEADER_SAFE = " !#$&'()*+,-./:;<=>?@[]^_`{|}~"


def account_header(name: str) -> tuple[str, str]:
    """The ``x-llm-gateway-account`` header for a response the account ``name`` served."""
    return ACCOUNT_HEADER, quote(name, safe=_HEADER_SAFE)


def timeouts_of(config: Config) -> Timeouts:
    """The upstream timeouts a config sets (built once per loaded config)."""
    p = config.proxy
    last = _last_timeouts[0]
    if last is not None and last[0] is p:
        return last[1]
    timeouts = Timeouts(
        connect=p.connect_timeout,
        tls=p.tls_timeout,
        response_headers=p.response_timeout,
        stream_idle=p.stream_idle_timeout,
        total=p.request_timeout,
    )
    _last_timeouts[0] = (p, timeouts)
    return timeouts


#: the proxy section of the config in use and its timeouts (configs are frozen)
_last_timeouts: list[tuple[ProxyConfig, Timeouts] | None] = [None]


@dataclass(frozen=True, slots=True)
class Prepared:
    client_format: str
    upstream_format: str
    client_model: str
    upstream_model: str
    passthrough: bool
    target: UpstreamTarget
    headers: list[tuple[str, str]]
    body: bytes
    #: the client asked for the trailing usage chunk (OpenAI ``include_usage``)
    client_wants_usage: bool
    #: the gateway asked the upstream for usage the client did not request
    usage_added: bool
    #: masks the account's credential in whatever error reaches the client
    redactor: Redactor
    #: a token count asked of a counter in another format: its answer is read with this
    count: TokenCounter | None = None
    #: the client wants its stream as a JSON array, not SSE
    json_array: bool = False

    def stream_pipe(self, array_input: bool = False) -> StreamPipe:
        """The pipe for the upstream's stream (``array_input``: it came as a JSON array)."""
        return make_stream_pipe(
            client_format=self.client_format,
            upstream_format=self.upstream_format,
            client_model=self.client_model,
            rename_model=self.client_model != self.upstream_model,
            passthrough=self.passthrough,
            include_usage=self.client_wants_usage,
            strip_usage=self.usage_added,
            redactor=self.redactor,
            json_array=self.json_array,
            array_input=array_input,
        )


def _client_wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def prepare(
    call: ClientCall,
    account: UpstreamAccount,
    credential: str,
    request: Request,
    oauth: OAuthSettings,
    model: str | None = None,
) -> Prepared:
    """The upstream request for ``call`` on ``account`` (``oauth``: the config's
    OAuth settings, which say how subscription requests present themselves;
    ``model``: the name routed to, after aliases and fallbacks, the client's own
    by default)."""
    provider = get_provider(account.provider)
    upstream_model = account.upstream_model(call.model if model is None else model)
    counter = provider.token_counter if call.endpoint.operation is Operation.COUNT_TOKENS else None
    operation: Operation
    upstream_format: str | None
    if counter is not None:
        operation, upstream_format = Operation.COUNT_TOKENS, counter.wire_format
    else:
        operation, upstream_format = provider.upstream_operation(
            account, call.endpoint.operation, upstream_model
        )
    if upstream_format is None:  # e.g. legacy completions on a chat-only provider
        operation, chat = provider.upstream_operation(account, Operation.CHAT, upstream_model)
        upstream_format = chat or provider.wire_formats[Operation.CHAT]
    client_format: str = call.endpoint.client_format
    passthrough = upstream_format == client_format
    body: dict[str, Any]
    if passthrough:
        body = call.body
        # a format that names the model in the path (Gemini) has none in the body
        if upstream_model != call.model and "model" in body:
            body = {**body, "model": upstream_model}
        if counter is not None and upstream_model != call.model:
            # a count may name the model inside the request it wraps (Gemini's
            # REST form): rewrapped, it names the upstream's model there too
            body = counter.request(body, upstream_model)
    else:
        unified = FORMATS[client_format].parse_request(call.body)
        if call.stream and not unified.stream:
            # the path asked for the stream (the Gemini API), and such streams
            # carry usage: ask the upstream for both
            unified = replace(unified, stream=True, stream_include_usage=True)
        if operation is Operation.COUNT_TOKENS:
            unified = _what_counts(unified)
        body = FORMATS[upstream_format].render_request(replace(unified, model=upstream_model))
        if operation is Operation.COUNT_TOKENS:  # a renderer's default output limit
            for name in FORMATS[upstream_format].request_shape.max_tokens:
                body.pop(name, None)
    fit = FORMATS[upstream_format].fit_upstream
    if not passthrough or fit.applies(request.body):
        body = fit.fit(body)  # what the gateway carried for another provider
    usage_added = False
    if call.stream and account.quirks.stream_usage:
        body, usage_added = ask_for_stream_usage(upstream_format, body)
    body = adjust_outgoing(upstream_format, body, account.quirks)
    if counter is not None and not passthrough:
        body = counter.request(body, upstream_model)
    elif account.max_output_tokens is not None:
        body = cap_output_tokens(body, account.max_output_tokens)
    body = provider.adjust_body(account, operation, body)
    data = request.body if body is call.body else dumps_bytes(body)
    target = provider.build_target(
        account,
        credential,
        operation,
        upstream_model,
        request.header_map,
        request.query if call.endpoint.forward_query else "",
        call.stream,
    )
    headers = [
        *target.headers,
        ("accept", "text/event-stream" if call.stream else "application/json"),
        ("accept-encoding", "identity"),
        ("user-agent", _USER_AGENT),
    ]
    headers = provider.adjust_headers(account, headers, request.header_map, oauth)
    return Prepared(
        client_format=client_format,
        upstream_format=upstream_format,
        client_model=call.model,
        upstream_model=upstream_model,
        passthrough=passthrough,
        target=target,
        headers=headers,
        body=data,
        client_wants_usage=_client_wants_usage(call.body),
        usage_added=usage_added and not _client_wants_usage(call.body),
        redactor=Redactor.for_credential(credential),
        count=None if passthrough else counter,
        json_array=call.json_array,
    )


def _what_counts(unified: ChatRequest) -> ChatRequest:
    """A converted token count carries the prompt only (system, messages, tools,
    thinking): counters refuse output and sampling settings."""
    return replace(
        unified,
        max_tokens=None,
        temperature=None,
        top_p=None,
        top_k=None,
        stop=(),
        stream=False,
        stream_include_usage=False,
        response_format=None,
        seed=None,
        frequency_penalty=None,
        presence_penalty=None,
        logit_bias=None,
        service_tier=None,
        user=None,
        parallel_tool_calls=None,
    )


def relay_body(
    prepared: Prepared, status: int, headers: list[tuple[str, str]], data: bytes
) -> tuple[Response, Usage | None]:
    """A successful upstream body in the client's format and with its model name,
    and the usage it reports. The body is parsed once."""
    parsed = decode_json(data)
    if not isinstance(parsed, dict):
        error = _error(prepared, 502, "api_error", "the upstream returned a body that is not JSON")
        return error, None
    if prepared.count is not None:
        tokens = prepared.count.read(parsed)
        if tokens is None:
            error = _error(prepared, 502, "api_error", "the upstream's token count holds no count")
            return error, None
        return json_response(
            status, FORMATS[prepared.client_format].token_count.render(tokens)
        ), None
    usage = usage_of_body(prepared.upstream_format, parsed)
    if prepared.passthrough:
        # the id in the client format's style (an answer without one, such as a
        # token count, gets none)
        given = parsed.get("id")
        prefix = FORMATS[prepared.client_format].id_prefix
        restyle = "id" in parsed and not (isinstance(given, str) and given.startswith(prefix))
        if prepared.client_model == prepared.upstream_model and not restyle:
            return Response(status, [("content-type", "application/json")], data), usage
        if restyle:
            parsed["id"] = response_id(prefix, given if isinstance(given, str) else None)
        model_field = FORMATS[prepared.client_format].model_field
        if model_field in parsed:
            parsed[model_field] = prepared.client_model
        return json_response(status, parsed), usage
    unified = FORMATS[prepared.upstream_format].parse_response(parsed)
    if not unified.created:
        unified = replace(unified, created=int(time.time()))
    rendered = FORMATS[prepared.client_format].render_response(unified, model=prepared.client_model)
    return json_response(status, rendered), unified.usage


def relay_body_as_stream(prepared: Prepared, data: bytes) -> tuple[bytes, Usage | None]:
    """A whole upstream JSON answer to a *streaming* request (some compatible
    servers ignore ``stream``), as the stream the client asked for: parsed, then
    replayed through the client format's renderer. Raises UpstreamError (502)
    when the body is not an answer."""
    parsed = decode_json(data)
    if not isinstance(parsed, dict):
        raise UpstreamError(
            "the upstream answered a streaming request with a body that is not JSON"
        )
    unified = FORMATS[prepared.upstream_format].parse_response(parsed)
    renderer = STREAM_FORMATS[prepared.client_format].renderer_factory(
        model=prepared.client_model,
        include_usage=prepared.client_wants_usage,
        created=unified.created or int(time.time()),
    )
    body = b"".join([renderer.feed(event) for event in events_of(unified)]) + renderer.finish()
    if prepared.json_array:
        framer = JSONArrayFramer()
        body = framer.feed(body) + framer.finish()
    return body, unified.usage


def error_answer(
    prepared: Prepared, account: UpstreamAccount, status: int, data: bytes
) -> bytes | None:
    """The upstream body an error answer stands for, when the account's provider
    reads it as an answer (``Provider.error_as_answer``: Azure's content filter
    blocking a prompt is a refusal), with a fresh id and the upstream model's
    name; None for a plain error."""
    answer = get_provider(account.provider).error_as_answer(prepared.upstream_format, status, data)
    if answer is None:
        return None
    answer["id"] = response_id(FORMATS[prepared.upstream_format].id_prefix, None)
    answer["model"] = prepared.upstream_model
    answer["created"] = int(time.time())
    return dumps_bytes(answer)


def relay_error(
    prepared: Prepared, status: int, headers: list[tuple[str, str]], data: bytes
) -> Response:
    """An upstream error status, with its message, in the client's format, with
    the account's credential and anything key-shaped masked."""
    relayed = [(k, v) for k, v in headers if k in _RELAYED_ERROR_HEADERS]
    if prepared.passthrough and isinstance(decode_json(data), dict):
        body = prepared.redactor.body(data)
        return Response(status, [("content-type", "application/json"), *relayed], body)
    kind, message = FORMATS[prepared.upstream_format].parse_error(status, data)
    return _error(prepared, status, kind, message, relayed)


def _error(
    prepared: Prepared,
    status: int,
    kind: str,
    message: str,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    payload = FORMATS[prepared.client_format].render_error(
        status, kind or kind_for_status(status), relay_message(message, status, prepared.redactor)
    )
    return json_response(status, payload, headers)
