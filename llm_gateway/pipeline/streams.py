"""Stream pipes: upstream SSE bytes in, the client's SSE bytes out, one chunk at a time.

Theory of operation: the proxy pulls a chunk from the upstream, hands it to
``feed`` and writes what comes back before pulling the next, so memory stays
bounded by one chunk. Three pipes, chosen once per stream:

* ``RawPipe``: same format and same model name. Bytes pass untouched.
* ``RewritePipe``: same format, but the model was renamed or the gateway added
  a usage request the client did not make. Events are decoded and re-encoded
  by the format's rewriter (other fields are kept as sent).
* ``ConvertPipe``: different formats. Decoder -> the upstream format's parser
  -> unified events -> the client format's renderer.

``finish`` is called at the end of the upstream body and closes the client's
stream properly (a converter emits an error event if the upstream stopped
early). ``fail`` is called when reading the upstream failed: it produces an
error event in the client's format and ends the stream; nothing follows it.
"""

from __future__ import annotations

import time
from typing import Protocol

from ..streaming.events import StreamError
from ..streaming.registry import STREAM_FORMATS
from ..streaming.sse import SSEDecoder

__all__ = ["ConvertPipe", "RawPipe", "RewritePipe", "StreamPipe", "make_stream_pipe"]


class StreamPipe(Protocol):
    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def fail(self, kind: str, message: str) -> bytes: ...


class RawPipe:
    __slots__ = ("_format", "_done")

    def __init__(self, client_format: str):
        self._format = client_format
        self._done = False

    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""

    def fail(self, kind: str, message: str) -> bytes:
        return STREAM_FORMATS[self._format].error_event(StreamError(kind, message))


class RewritePipe:
    __slots__ = ("_decoder", "_format", "_rewriter")

    def __init__(self, client_format: str, client_model: str, strip_usage: bool):
        self._format = client_format
        self._decoder = SSEDecoder()
        self._rewriter = STREAM_FORMATS[client_format].rewriter_factory(
            model=client_model, strip_usage=strip_usage
        )

    def feed(self, data: bytes) -> bytes:
        rewrite = self._rewriter.feed
        return b"".join([rewrite(event) for event in self._decoder.feed(data)])

    def finish(self) -> bytes:
        rewrite = self._rewriter.feed
        out = b"".join([rewrite(event) for event in self._decoder.close()])
        return out + self._rewriter.finish()

    def fail(self, kind: str, message: str) -> bytes:
        return STREAM_FORMATS[self._format].error_event(StreamError(kind, message))


class ConvertPipe:
    __slots__ = ("_decoder", "_failed", "_parser", "_renderer")

    def __init__(
        self, client_format: str, upstream_format: str, client_model: str, include_usage: bool
    ):
        self._decoder = SSEDecoder()
        self._parser = STREAM_FORMATS[upstream_format].parser_factory()
        self._renderer = STREAM_FORMATS[client_format].renderer_factory(
            model=client_model, include_usage=include_usage, created=int(time.time())
        )
        self._failed = False

    def feed(self, data: bytes) -> bytes:
        parse, render = self._parser.feed, self._renderer.feed
        out = [render(unified) for event in self._decoder.feed(data) for unified in parse(event)]
        return b"".join(out)

    def finish(self) -> bytes:
        parse, render = self._parser.feed, self._renderer.feed
        out = [render(unified) for event in self._decoder.close() for unified in parse(event)]
        out += [render(unified) for unified in self._parser.finish()]
        out.append(self._renderer.finish())
        return b"".join(out)

    def fail(self, kind: str, message: str) -> bytes:
        return self._renderer.feed(StreamError(kind, message)) + self._renderer.finish()


def make_stream_pipe(
    *,
    client_format: str,
    upstream_format: str,
    client_model: str,
    rename_model: bool,
    passthrough: bool,
    include_usage: bool,
    strip_usage: bool,
) -> StreamPipe:
    if not passthrough:
        return ConvertPipe(client_format, upstream_format, client_model, include_usage)
    if rename_model or strip_usage:
        return RewritePipe(client_format, client_model, strip_usage)
    return RawPipe(client_format)
