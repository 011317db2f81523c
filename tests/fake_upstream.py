"""A programmable fake upstream provider on 127.0.0.1, and the wiring of a real
gateway to it, for the end-to-end tests.

Theory of operation: ``FakeUpstream`` is an asyncio HTTP/1.1 server (h11,
server role) whose event loop runs in a background thread, so a test can
drive it from synchronous SDK code while the gateway runs in a thread of its
own (``conftest.gateway_in_thread``). Every connection gets an id; every
request is recorded whole (method, path, query, headers, body bytes,
connection id) before it is answered, and the server counts connections
opened and closed and the body bytes its streams managed to write.

What it answers is a *reply*, chosen per request by ``respond`` (one reply for
every request, or a function of the ``Received`` request) after any replies
``queue``d for the next requests:

* ``Respond``: a whole body (JSON, an error status with headers, anything).
* ``Stream``: a chunked body written piece by piece: one piece per event or
  pieces of ``chunk_size`` bytes regardless of event boundaries, ``delay``
  seconds before each piece, then a proper end, an abrupt close (FIN or RST)
  without the terminating chunk, or a hang. A ``Gate`` among the events holds
  the rest back until the test opens it.
* ``Hang``: never answers; ``Drop``: closes the connection without a word.

``Answer`` plus ``answering`` builds realistic provider bodies (Anthropic
messages, OpenAI chat completions, OpenAI legacy completions; JSON or SSE)
for whatever the request asked: the format follows the request path, the
model name is the one the request carried, and an OpenAI usage chunk comes
only when ``stream_options.include_usage`` asked for it, as OpenAI does.

The last part (``wired_gateway``) sets up a gateway home through the CLI
(one OpenAI and one Anthropic account on fake upstreams, each with a
``model_map`` alias, and a gateway key), runs the gateway, and hands out SDK
clients that never use the environment's proxies and never retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, TypeVar

import h11

SAFETY = 10.0  # seconds: the longest any helper here waits before failing a test

# --- what the upstream received ----------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    #: header names lower-cased, in the order received
    headers: tuple[tuple[str, str], ...]
    body: bytes
    connection_id: int

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def stream(self) -> bool:
        try:
            return bool(self.json().get("stream"))
        except ValueError:
            return False


# --- what it answers ------------------------------------------------------------


@dataclass(frozen=True)
class Respond:
    """A whole response: status, headers and body (content-length framed)."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    #: seconds to wait before answering
    delay: float = 0.0


def json_reply(
    payload: Any, status: int = 200, headers: Sequence[tuple[str, str]] = (), delay: float = 0.0
) -> Respond:
    body = json.dumps(payload).encode()
    return Respond(status, body, (("content-type", "application/json"), *headers), delay)


class Gate:
    """A point inside a ``Stream`` where the upstream waits until the test opens it.

    A gate nobody opens within ``timeout`` seconds lets the stream go on and
    says so in ``timed_out``, so a gateway that withholds events fails the
    test instead of hanging it.
    """

    def __init__(self, timeout: float = SAFETY / 2) -> None:
        self.timeout = timeout
        self._opened = threading.Event()
        self.timed_out = False

    def open(self) -> None:
        self._opened.set()

    async def passed(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self._opened.is_set():
            if time.monotonic() > deadline:
                self.timed_out = True
                return
            await asyncio.sleep(0.005)


@dataclass(frozen=True)
class Stream:
    """A chunked (SSE) body.

    ``events`` are the body's pieces (already framed SSE events, or a ``Gate``),
    or a function returning a fresh iterable of them (for very large bodies).
    ``chunk_size`` re-cuts the concatenated body into pieces of that many
    bytes (no gates then).
    ``ending``: ``end`` (terminating chunk), ``close`` (the connection is
    closed mid-body: FIN), ``reset`` (closed mid-body with an RST) or ``hang``
    (nothing more is ever sent).
    """

    events: Sequence[bytes | Gate] | Callable[[], Iterable[bytes]]
    delay: float = 0.0
    chunk_size: int | None = None
    ending: Literal["end", "close", "reset", "hang"] = "end"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = (("content-type", "text/event-stream"),)

    def pieces(self) -> Iterator[bytes | Gate]:
        events = self.events() if callable(self.events) else self.events
        if self.chunk_size is None:
            yield from events
            return
        data = b"".join(e for e in events if isinstance(e, bytes))
        for start in range(0, len(data), self.chunk_size):
            yield data[start : start + self.chunk_size]


@dataclass(frozen=True)
class Hang:
    """Read the request, never answer."""


@dataclass(frozen=True)
class Drop:
    """Close the connection instead of answering (``reset``: with an RST)."""

    reset: bool = False


Reply = Respond | Stream | Hang | Drop
Handler = Callable[[Received], Reply]


# --- the server -------------------------------------------------------------------

T = TypeVar("T")


class BackgroundLoop:
    """An event loop running in a daemon thread; ``run`` a coroutine on it and wait."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = SAFETY) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(SAFETY)
        self.loop.close()


@dataclass
class _Conn:
    id: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.SERVER))
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    eof: asyncio.Event = field(default_factory=asyncio.Event)


class FakeUpstream:
    """``with FakeUpstream() as up``: an HTTP/1.1 server on 127.0.0.1:``up.port``."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        send_buffer: int | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.send_buffer = send_buffer
        self.port = 0
        self.requests: list[Received] = []
        self.connections_opened = 0
        self.connections_closed = 0
        #: body bytes of ``Stream`` replies written and drained so far
        self.bytes_streamed = 0
        self._handler: Handler = lambda _: json_reply({"error": "no reply scripted"}, 500)
        self._queued: list[Reply] = []
        self._lock = threading.Lock()
        self._loop: BackgroundLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._conns: dict[int, _Conn] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting: set[asyncio.Task[Any]] = set()

    # -- scripting ------------------------------------------------------------------

    def respond(self, reply: Reply | Handler) -> FakeUpstream:
        """Answer every request (after any queued replies) with ``reply``."""
        self._handler = reply if callable(reply) else (lambda _: reply)
        return self

    def queue(self, *replies: Reply) -> FakeUpstream:
        """Answer the next requests with these, in order."""
        with self._lock:
            self._queued.extend(replies)
        return self

    def reset(self) -> None:
        """Forget the requests received and any replies still queued."""
        with self._lock:
            self._queued.clear()
        self.requests.clear()

    def _reply_for(self, request: Received) -> Reply:
        with self._lock:
            if self._queued:
                return self._queued.pop(0)
        return self._handler(request)

    # -- observing ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        return self.connections_opened - self.connections_closed

    def last(self) -> Received:
        assert self.requests, "the upstream received no request"
        return self.requests[-1]

    def wait_for_requests(self, count: int, timeout: float = SAFETY) -> list[Received]:
        _poll(lambda: len(self.requests) >= count, timeout, f"{count} upstream request(s)")
        return list(self.requests)

    def wait_until_closed(self, connection_id: int, timeout: float = SAFETY) -> None:
        _poll(
            lambda: connection_id not in self._conns and self.connections_opened > connection_id,
            timeout,
            f"upstream connection {connection_id} to close",
        )

    # -- life cycle -------------------------------------------------------------------

    def __enter__(self) -> FakeUpstream:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._loop = BackgroundLoop("fake-upstream")
        self._loop.run(self._start())

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.run(self._stop())
            self._loop.close()
            self._loop = None

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for conn in list(self._conns.values()):
            conn.writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._accepting, return_exceptions=True)

    # -- one connection -------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if self.send_buffer is not None and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        current = asyncio.current_task()
        if current is not None:
            self._accepting.add(current)
        conn = _Conn(self.connections_opened, reader, writer)
        self.connections_opened += 1
        self._conns[conn.id] = conn
        reading = asyncio.ensure_future(self._read(conn))
        serving = asyncio.ensure_future(self._serve(conn))
        self._tasks.update((reading, serving))
        try:
            await asyncio.wait({serving})
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            self._tasks.difference_update((reading, serving))
            writer.transport.abort()
            del self._conns[conn.id]
            self.connections_closed += 1
            if current is not None:
                self._accepting.discard(current)

    async def _read(self, conn: _Conn) -> None:
        """Feed h11 until the client closes; a close wakes whatever waits on it."""
        while True:
            try:
                data = await conn.reader.read(65536)
            except (ConnectionError, ssl.SSLError):
                data = b""
            if data:
                conn.h11.receive_data(data)
                conn.arrived.set()
                continue
            conn.eof.set()
            conn.arrived.set()
            return

    async def _next_request(self, conn: _Conn) -> Received | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = conn.h11.next_event()
            except h11.RemoteProtocolError:
                return None
            if event is h11.NEED_DATA:
                if conn.eof.is_set():
                    return None
                conn.arrived.clear()
                await conn.arrived.wait()
                if conn.eof.is_set():
                    conn.h11.receive_data(b"")
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                target = head.target.decode()
                path, _, query = target.partition("?")
                return Received(
                    head.method.decode(),
                    path,
                    query,
                    tuple((bytes(k).decode().lower(), bytes(v).decode()) for k, v in head.headers),
                    bytes(body),
                    conn.id,
                )
            else:
                return None

    async def _serve(self, conn: _Conn) -> None:
        try:
            while (request := await self._next_request(conn)) is not None:
                self.requests.append(request)
                if not await self._answer(conn, self._reply_for(request)):
                    return
                if conn.h11.our_state is not h11.DONE or conn.h11.their_state is not h11.DONE:
                    return
                conn.h11.start_next_cycle()
        except (ConnectionError, ssl.SSLError, h11.LocalProtocolError):
            return

    async def _answer(self, conn: _Conn, reply: Reply) -> bool:
        """Send ``reply``; False when the connection must close afterwards."""
        if isinstance(reply, Hang):
            await conn.eof.wait()
            return False
        if isinstance(reply, Drop):
            if reply.reset:
                conn.writer.transport.abort()
            else:
                conn.writer.close()
            return False
        if isinstance(reply, Respond):
            if reply.delay:
                await asyncio.sleep(reply.delay)
            headers = [*reply.headers, ("content-length", str(len(reply.body)))]
            await self._send(conn, _head(reply.status, headers))
            if reply.body:
                await self._send(conn, h11.Data(data=reply.body))
            await self._send(conn, h11.EndOfMessage())
            return True
        await self._send(conn, _head(reply.status, [*reply.headers, ("cache-control", "no-cache")]))
        for piece in reply.pieces():
            if isinstance(piece, Gate):
                await piece.passed()
                continue
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if conn.eof.is_set():
                return False
            await self._send(conn, h11.Data(data=piece))
            self.bytes_streamed += len(piece)
        if reply.ending == "close":
            conn.writer.close()
            return False
        if reply.ending == "reset":
            conn.writer.transport.abort()
            return False
        if reply.ending == "hang":
            await conn.eof.wait()
            return False
        await self._send(conn, h11.EndOfMessage())
        return True

    async def _send(self, conn: _Conn, event: h11.Event) -> None:
        data = conn.h11.send(event)
        if data:
            conn.writer.write(data)
            await conn.writer.drain()


def _head(status: int, headers: list[tuple[str, str]]) -> h11.Response:
    try:
        reason = HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b""
    return h11.Response(status_code=status, headers=headers, reason=reason)


def _poll(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


# --- realistic provider answers -------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """What the model says, independent of the wire format."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    #: thinking before the text: Anthropic thinking blocks, OpenAI ``reasoning_content``
    reasoning: str = ""
    input_tokens: int = 11
    output_tokens: int = 7
    #: ``stop`` / ``end_turn`` semantics unless tools were called
    stop: Literal["stop", "length"] = "stop"


def sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def _text_pieces(text: str) -> list[str]:
    """The text split after each space: several deltas, exactly the text when joined."""
    pieces, current = [], ""
    for char in text:
        current += char
        if char == " ":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def _json_pieces(arguments: dict[str, Any]) -> list[str]:
    text = json.dumps(arguments)
    cut = max(1, len(text) // 3)
    return [text[:cut], text[cut : 2 * cut], text[2 * cut :]]


# Anthropic messages

THINKING_SIGNATURE = "EqQBCkYIARgCKkBfakeSignatureForTests"


def anthropic_message(answer: Answer, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.reasoning:
        content.append(
            {"type": "thinking", "thinking": answer.reasoning, "signature": THINKING_SIGNATURE}
        )
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    for call in answer.tool_calls:
        content.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    return {
        "id": "msg_fake01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _anthropic_stop(answer),
        "stop_sequence": None,
        "usage": {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens},
    }


def _anthropic_stop(answer: Answer) -> str:
    if answer.tool_calls:
        return "tool_use"
    return "max_tokens" if answer.stop == "length" else "end_turn"


def anthropic_events(answer: Answer, model: str) -> list[bytes]:
    start = {**anthropic_message(answer, model), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": answer.input_tokens, "output_tokens": 1}
    events = [sse({"type": "message_start", "message": start}, "message_start")]
    events.append(sse({"type": "ping"}, "ping"))
    index = 0
    if answer.reasoning:
        events.append(_block_start(index, {"type": "thinking", "thinking": "", "signature": ""}))
        for piece in _text_pieces(answer.reasoning):
            events.append(_block_delta(index, {"type": "thinking_delta", "thinking": piece}))
        signature = {"type": "signature_delta", "signature": THINKING_SIGNATURE}
        events.append(_block_delta(index, signature))
        events.append(_block_stop(index))
        index += 1
    if answer.text:
        events.append(_block_start(index, {"type": "text", "text": ""}))
        for piece in _text_pieces(answer.text):
            events.append(_block_delta(index, {"type": "text_delta", "text": piece}))
        events.append(_block_stop(index))
        index += 1
    for call in answer.tool_calls:
        block: dict[str, Any] = {"type": "tool_use", "id": call.id, "name": call.name}
        events.append(_block_start(index, {**block, "input": {}}))
        for piece in _json_pieces(call.arguments):
            events.append(_block_delta(index, {"type": "input_json_delta", "partial_json": piece}))
        events.append(_block_stop(index))
        index += 1
    delta: dict[str, Any] = {"stop_reason": _anthropic_stop(answer), "stop_sequence": None}
    usage = {"output_tokens": answer.output_tokens}
    events.append(sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta"))
    events.append(sse({"type": "message_stop"}, "message_stop"))
    return events


def _block_start(index: int, block: dict[str, Any]) -> bytes:
    payload = {"type": "content_block_start", "index": index, "content_block": block}
    return sse(payload, "content_block_start")


def _block_delta(index: int, delta: dict[str, Any]) -> bytes:
    payload = {"type": "content_block_delta", "index": index, "delta": delta}
    return sse(payload, "content_block_delta")


def _block_stop(index: int) -> bytes:
    return sse({"type": "content_block_stop", "index": index}, "content_block_stop")


# OpenAI chat completions

CREATED = 1_700_000_000


def _openai_finish(answer: Answer) -> str:
    return "tool_calls" if answer.tool_calls else answer.stop


def _openai_usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }


def openai_chat_completion(answer: Answer, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    if answer.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in answer.tool_calls
        ]
    return {
        "id": "chatcmpl-fake01",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _openai_finish(answer),
            }
        ],
        "usage": _openai_usage(answer),
    }


def openai_chat_events(answer: Answer, model: str, include_usage: bool) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": "chatcmpl-fake01",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            payload["usage"] = None
        return sse(payload)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"reasoning_content": piece}) for piece in _text_pieces(answer.reasoning)]
    events += [chunk({"content": piece}) for piece in _text_pieces(answer.text)]
    for index, call in enumerate(answer.tool_calls):
        function = {"name": call.name, "arguments": ""}
        first = {"index": index, "id": call.id, "type": "function", "function": function}
        events.append(chunk({"tool_calls": [first]}))
        for piece in _json_pieces(call.arguments):
            events.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    events.append(chunk({}, _openai_finish(answer)))
    if include_usage:
        usage = {
            "id": "chatcmpl-fake01",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [],
            "usage": _openai_usage(answer),
        }
        events.append(sse(usage))
    events.append(sse("[DONE]"))
    return events


# OpenAI legacy completions


def openai_completion(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": "cmpl-fake01",
        "object": "text_completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {"text": answer.text, "index": 0, "logprobs": None, "finish_reason": answer.stop}
        ],
        "usage": _openai_usage(answer),
    }


def openai_completion_events(answer: Answer, model: str, include_usage: bool) -> list[bytes]:
    def chunk(text: str, finish: str | None = None) -> bytes:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        payload: dict[str, Any] = {
            "id": "cmpl-fake01",
            "object": "text_completion",
            "created": CREATED,
            "model": model,
            "choices": [choice],
        }
        if include_usage:
            payload["usage"] = None
        return sse(payload)

    events = [chunk(piece) for piece in _text_pieces(answer.text)]
    events.append(chunk("", answer.stop))
    if include_usage:
        payload = {
            "id": "cmpl-fake01",
            "object": "text_completion",
            "created": CREATED,
            "model": model,
            "choices": [],
            "usage": _openai_usage(answer),
        }
        events.append(sse(payload))
    events.append(sse("[DONE]"))
    return events


# OpenAI Responses (written from OpenAI's API reference: the response object and
# its streaming events)


def _responses_output(answer: Answer) -> list[dict[str, Any]]:
    output: list[dict[str, Any]] = []
    if answer.reasoning:
        summary = [{"type": "summary_text", "text": answer.reasoning}]
        output.append({"id": "rs_fake01", "type": "reasoning", "summary": summary})
    if answer.text:
        content = [{"type": "output_text", "text": answer.text, "annotations": []}]
        output.append(
            {
                "id": "msg_fake01",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": content,
            }
        )
    for number, call in enumerate(answer.tool_calls):
        output.append(
            {
                "id": f"fc_fake{number}",
                "type": "function_call",
                "status": "completed",
                "call_id": call.id,
                "name": call.name,
                "arguments": json.dumps(call.arguments),
            }
        )
    return output


def responses_object(answer: Answer, model: str, status: str = "completed") -> dict[str, Any]:
    incomplete = answer.stop == "length" and not answer.tool_calls
    return {
        "id": "resp_fake01",
        "object": "response",
        "created_at": CREATED,
        "status": "incomplete" if incomplete and status == "completed" else status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "model": model,
        "output": _responses_output(answer) if status != "in_progress" else [],
        "usage": {
            "input_tokens": answer.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": answer.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": answer.input_tokens + answer.output_tokens,
        }
        if status != "in_progress"
        else None,
    }


def responses_events(answer: Answer, model: str) -> list[bytes]:
    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append(sse({"type": kind, "sequence_number": len(events), **fields}, kind))

    start = responses_object(answer, model, "in_progress")
    emit("response.created", response=start)
    emit("response.in_progress", response=start)
    for index, item in enumerate(_responses_output(answer)):
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            part = {"type": "summary_text", "text": ""}
            emit("response.reasoning_summary_part.added", **at, summary_index=0, part=part)
            for piece in _text_pieces(answer.reasoning):
                emit("response.reasoning_summary_text.delta", **at, summary_index=0, delta=piece)
            text = answer.reasoning
            emit("response.reasoning_summary_text.done", **at, summary_index=0, text=text)
            done_part = {"type": "summary_text", "text": text}
            emit("response.reasoning_summary_part.done", **at, summary_index=0, part=done_part)
        elif item["type"] == "message":
            emit("response.output_item.added", output_index=index, item={**item, "content": []})
            part = {"type": "output_text", "text": "", "annotations": []}
            emit("response.content_part.added", **at, content_index=0, part=part)
            for piece in _text_pieces(answer.text):
                emit("response.output_text.delta", **at, content_index=0, delta=piece)
            emit("response.output_text.done", **at, content_index=0, text=answer.text)
            emit("response.content_part.done", **at, content_index=0, part=item["content"][0])
        else:
            emit("response.output_item.added", output_index=index, item={**item, "arguments": ""})
            for piece in _json_pieces(json.loads(item["arguments"])):
                emit("response.function_call_arguments.delta", **at, delta=piece)
            emit("response.function_call_arguments.done", **at, arguments=item["arguments"])
        emit("response.output_item.done", output_index=index, item=item)
    final = responses_object(answer, model)
    terminal = "response.completed" if final["status"] == "completed" else "response.incomplete"
    emit(terminal, response=final)
    return events


def body_events(answer: Answer, request: Received) -> list[bytes]:
    """The SSE events a real provider would stream for ``request``."""
    body = request.json()
    model = str(body.get("model"))
    options = body.get("stream_options")
    usage = isinstance(options, dict) and options.get("include_usage") is True
    if request.path.endswith("/messages"):
        return anthropic_events(answer, model)
    if request.path.endswith("/responses"):
        return responses_events(answer, model)
    if request.path.endswith("/chat/completions"):
        return openai_chat_events(answer, model, usage)
    if request.path.endswith("/completions"):
        return openai_completion_events(answer, model, usage)
    raise AssertionError(f"no streamed answer for {request.path}")


def body_json(answer: Answer, request: Received) -> dict[str, Any]:
    model = str(request.json().get("model"))
    if request.path.endswith("/messages"):
        return anthropic_message(answer, model)
    if request.path.endswith("/responses"):
        return responses_object(answer, model)
    if request.path.endswith("/chat/completions"):
        return openai_chat_completion(answer, model)
    if request.path.endswith("/completions"):
        return openai_completion(answer, model)
    raise AssertionError(f"no answer for {request.path}")


def answering(
    answer: Answer, *, delay: float = 0.0, chunk_size: int | None = None
) -> Callable[[Received], Reply]:
    """A handler answering each request in its own format, streamed when it asked to be."""

    def handler(request: Received) -> Reply:
        if request.stream:
            return Stream(body_events(answer, request), delay=delay, chunk_size=chunk_size)
        return json_reply(body_json(answer, request))

    return handler


def anthropic_error(
    status: int, kind: str, message: str, headers: Sequence[tuple[str, str]] = ()
) -> Respond:
    payload = {"type": "error", "error": {"type": kind, "message": message}}
    return json_reply(payload, status, headers)


def openai_error(
    status: int, kind: str, message: str, headers: Sequence[tuple[str, str]] = ()
) -> Respond:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return json_reply(payload, status, headers)


# --- a gateway wired to fake upstreams ------------------------------------------------

#: the upstream credentials the fakes expect; never shown to clients
OPENAI_UPSTREAM_KEY = "sk-upstream-openai-" + "o" * 24
ANTHROPIC_UPSTREAM_KEY = "sk-ant-upstream-" + "a" * 24

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def clear_proxy_environment(monkeypatch: Any) -> None:
    """Neither the SDKs nor the gateway may pick up the developer's proxies."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def add_account(
    provider: str,
    base_url: str,
    *,
    name: str,
    key: str,
    models: str | None = None,
    model_map: str | None = None,
    priority: int | None = None,
) -> str:
    """``llm-gateway upstream add``; returns the account id."""
    from conftest import run_cli

    args = ["upstream", "add", "--type", "api-key", "--provider", provider, "--name", name]
    args += ["--key", key, "--base-url", base_url, "--json"]
    if models is not None:
        args += ["--models", models]
    if model_map is not None:
        args += ["--model-map", model_map]
    if priority is not None:
        args += ["--priority", str(priority)]
    result = run_cli(*args)
    account_id: str = result.json()["id"]
    return account_id


def add_gateway_key(name: str = "e2e") -> str:
    from conftest import run_cli

    key: str = run_cli("apikey", "add", "--name", name, "--json").json()["key"]
    return key


def sdk_http_client(capture: list[Any] | None = None) -> Any:
    """The SDKs' HTTP client without environment proxies; ``capture`` collects requests."""
    import httpx2

    def record(request: Any) -> None:
        request.read()
        if capture is not None:
            capture.append(request)

    return httpx2.Client(trust_env=False, event_hooks={"request": [record]}, timeout=SAFETY * 2)


def openai_client(port: int, key: str, capture: list[Any] | None = None) -> Any:
    import openai

    return openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=key,
        max_retries=0,
        http_client=sdk_http_client(capture),
    )


def anthropic_client(port: int, key: str, capture: list[Any] | None = None) -> Any:
    import anthropic

    return anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{port}",
        api_key=key,
        max_retries=0,
        http_client=sdk_http_client(capture),
    )


@contextlib.contextmanager
def running_gateway(store: Any) -> Iterator[tuple[Any, int]]:
    """``conftest.gateway_in_thread`` with an environment free of proxy variables."""
    import os

    from conftest import gateway_in_thread

    environ = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    with gateway_in_thread(store, environ) as (gateway, port):
        yield gateway, port


#: model names the standard set-up's accounts serve and rename
OPENAI_ALIAS, OPENAI_MAPPED = "oa-alias", "gpt-4o-2024-08-06"
ANTHROPIC_ALIAS, ANTHROPIC_MAPPED = "an-alias", "claude-haiku-4-5-20251001"

PROVIDERS = ("openai", "anthropic")
#: (provider, mapped) -> (the model the client asks for, the model the upstream must get)
MODELS: dict[tuple[str, bool], tuple[str, str]] = {
    ("openai", False): ("gpt-4o", "gpt-4o"),
    ("openai", True): (OPENAI_ALIAS, OPENAI_MAPPED),
    ("anthropic", False): ("claude-haiku-4-5", "claude-haiku-4-5"),
    ("anthropic", True): (ANTHROPIC_ALIAS, ANTHROPIC_MAPPED),
}

_ISOLATED_VARIABLES = ("LLM_GATEWAY_SECRET_KEY", "LOG_LEVEL", "LLM_GATEWAY_HOME")


def isolate_environment(monkeypatch: Any, home: Any) -> None:
    """What ``conftest.home`` does, usable at any fixture scope; proxies cleared too."""
    for name in _ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLM_GATEWAY_HOME", str(home))
    clear_proxy_environment(monkeypatch)


@dataclass
class Wired:
    """A running gateway with one OpenAI and one Anthropic account on fake upstreams."""

    store: Any
    gateway: Any
    port: int
    key: str
    openai_up: FakeUpstream
    anthropic_up: FakeUpstream
    #: SDK clients handed out, closed by ``reset`` and at the end
    clients: list[Any] = field(default_factory=list)

    def upstream(self, provider: str) -> FakeUpstream:
        return self.openai_up if provider == "openai" else self.anthropic_up

    def reset(self) -> None:
        """Forget recorded requests and scripted replies (between tests sharing a gateway)."""
        self.close_clients()
        for up in (self.openai_up, self.anthropic_up):
            up.reset()
            up.respond(answering(Answer(text="unscripted")))

    def openai(self, capture: list[Any] | None = None) -> Any:
        self.clients.append(openai_client(self.port, self.key, capture))
        return self.clients[-1]

    def anthropic(self, capture: list[Any] | None = None) -> Any:
        self.clients.append(anthropic_client(self.port, self.key, capture))
        return self.clients[-1]

    def close_clients(self) -> None:
        while self.clients:
            self.clients.pop().close()


@contextlib.contextmanager
def wired_gateway(
    configure: Callable[[dict[str, Any]], None] | None = None,
    before_start: Callable[[], None] | None = None,
) -> Iterator[Wired]:
    """Fake OpenAI and Anthropic upstreams, accounts for them, a key, a running gateway.

    The gateway home is the one ``LLM_GATEWAY_HOME`` names (see
    ``isolate_environment``). The OpenAI account serves its default models
    plus ``OPENAI_ALIAS``; the Anthropic account ``claude-*`` plus
    ``ANTHROPIC_ALIAS``. ``configure`` may edit the config document and
    ``before_start`` run CLI commands before the gateway starts.
    """
    import os
    from pathlib import Path

    from llm_gateway.config.store import ConfigStore

    with FakeUpstream() as openai_up, FakeUpstream() as anthropic_up:
        add_account(
            "openai",
            openai_up.base_url + "/v1",
            name="openai-main",
            key=OPENAI_UPSTREAM_KEY,
            model_map=f"{OPENAI_ALIAS}={OPENAI_MAPPED}",
        )
        add_account(
            "anthropic",
            anthropic_up.base_url,
            name="anthropic-main",
            key=ANTHROPIC_UPSTREAM_KEY,
            model_map=f"{ANTHROPIC_ALIAS}={ANTHROPIC_MAPPED}",
        )
        key = add_gateway_key()
        store = ConfigStore(Path(os.environ["LLM_GATEWAY_HOME"]) / "config.yaml")
        if configure is not None:
            store.update(configure)
        if before_start is not None:
            before_start()
        with running_gateway(store) as (gateway, port):
            wired = Wired(store, gateway, port, key, openai_up, anthropic_up)
            wired.reset()
            try:
                yield wired
            finally:
                wired.close_clients()
