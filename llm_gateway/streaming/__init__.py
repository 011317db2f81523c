"""Streaming responses: SSE framing, unified stream events, per-format converters.

Theory of operation: bytes from an upstream go through ``sse.SSEDecoder``
(framing), then the upstream format's parser (``openai_chat``,
``openai_completions``, ``anthropic_messages``), which yields unified events
(``events``); the client format's renderer turns those back into SSE bytes.
Same-format streams skip the unified form and only have their model name
rewritten (``rewrite``). ``registry.STREAM_FORMATS`` lists the formats;
``accumulate`` rebuilds a complete ``ChatResponse`` from unified events, and
``replay`` does the reverse (for an upstream that answers a streaming request
with one whole body).
Nothing here does I/O or reads the clock.
"""
