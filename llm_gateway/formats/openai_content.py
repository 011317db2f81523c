"""OpenAI chat message content <-> unified parts.

Theory of operation: OpenAI ``content`` is either a string or an array of
typed parts (``text``, ``image_url``, ``file``, ``refusal``, ...). Parsing
turns both into unified parts; rendering writes a string for a single text
part and an array otherwise (the canonical form). Images travel as URLs:
``data:<media type>;base64,<data>`` for inline bytes, http(s) otherwise.

A unified USER turn renders as one ``tool`` message per ``ToolResultPart``
(in order), then one ``user`` message with the remaining parts. OpenAI tool
messages hold text only, so images inside a tool result move into that
trailing user message; ``is_error`` becomes an "Error: " prefix.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.formats import policy
from llm_gateway.formats.cache_control import read_cache_control
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.unified import (
    Base64Source,
    DocumentPart,
    ImagePart,
    Part,
    TextPart,
    ToolResultContent,
    ToolResultPart,
    URLSource,
)

__all__ = [
    "ERROR_PREFIX",
    "data_url",
    "parse_assistant_content",
    "parse_data_url",
    "parse_text_content",
    "parse_tool_content",
    "parse_user_content",
    "render_text",
    "render_user_turn",
]

ERROR_PREFIX = "Error: "


# -- data URLs ------------------------------------------------------------------------


def parse_data_url(url: str) -> Base64Source | None:
    """``data:<type>;base64,<data>`` -> Base64Source; None when ``url`` is not a base64 data URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[len("data:") :].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    media_type = header[: -len(";base64")].split(";")[0]
    return Base64Source(media_type or "application/octet-stream", data)


def data_url(source: Base64Source) -> str:
    return f"data:{source.media_type};base64,{source.data}"


# -- parse ----------------------------------------------------------------------------


def _content_parts(m: FieldReader, *, required: bool) -> list[tuple[str, FieldReader]] | str | None:
    content = m.get("content")
    if content is None:
        if required:
            raise m.fail(f"{m.at('content')} is required", param=m.at("content"))
        return None
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise m.fail(
            f"{m.at('content')} must be a string or an array of parts", param=m.at("content")
        )
    return list(m.items_of("content"))


def parse_text_content(m: FieldReader) -> tuple[TextPart, ...]:
    """system/developer content: a string or text parts."""
    content = _content_parts(m, required=True)
    if isinstance(content, str):
        return (TextPart(content),)
    return tuple(_text_part(path, p) for path, p in content or [])


def _text_part(path: str, p: FieldReader) -> TextPart:
    kind = p.req_str("type")
    if kind != "text":
        raise p.fail(f"{path}.type must be 'text' here, not {kind!r}", param=f"{path}.type")
    return TextPart(p.req_str("text"), read_cache_control(p))


def parse_tool_content(m: FieldReader) -> tuple[ToolResultContent, ...]:
    """tool message content: a string or text parts; "" means no content."""
    content = _content_parts(m, required=True)
    if isinstance(content, str):
        return (TextPart(content),) if content else ()
    return tuple(_text_part(path, p) for path, p in content or [])


def parse_assistant_content(m: FieldReader) -> tuple[TextPart, ...]:
    """assistant content: null, a string, or text/refusal parts; "" means no text."""
    content = _content_parts(m, required=False)
    if content is None or content == "":
        return ()
    if isinstance(content, str):
        return (TextPart(content),)
    parts = []
    for path, p in content:
        kind = p.req_str("type")
        if kind == "refusal":
            parts.append(TextPart(p.req_str("refusal")))
        else:
            parts.append(_text_part(path, p))
    return tuple(parts)


def parse_user_content(m: FieldReader) -> tuple[Part, ...]:
    """user content: a string or text / image_url / file parts."""
    content = _content_parts(m, required=True)
    if isinstance(content, str):
        return (TextPart(content),)
    return tuple(_user_part(path, p) for path, p in content or [])


def _user_part(path: str, p: FieldReader) -> Part:
    kind = p.req_str("type")
    if kind == "text":
        return _text_part(path, p)
    if kind == "image_url":
        image = p.req_obj("image_url")
        url = image.req_str("url")
        source: Base64Source | URLSource | None = parse_data_url(url)
        if source is None:
            if not url.startswith(("http://", "https://")):
                raise image.fail(
                    f"{image.at('url')} must be an http(s) URL or a base64 data: URL",
                    param=image.at("url"),
                )
            source = URLSource(url)
        return ImagePart(source, image.opt_str("detail"), read_cache_control(p))
    if kind == "file":
        file = p.req_obj("file")
        if file.has("file_id"):
            raise policy.unsupported(file.at("file_id"), "uploaded file ids exist only on OpenAI")
        data = file.req_str("file_data")
        doc = parse_data_url(data) or Base64Source("application/pdf", data)
        return DocumentPart(doc, file.opt_str("filename"), read_cache_control(p))
    raise policy.unsupported(f"{path}.type", f"{kind!r} content parts are not converted")


# -- render ---------------------------------------------------------------------------


def render_text(parts: tuple[TextPart, ...]) -> str | list[dict[str, Any]]:
    """Text parts as OpenAI content: a string for one part, an array otherwise."""
    if any(p.cache_control is not None for p in parts):
        policy.dropped("cache_control", "OpenAI caches prompts automatically")
    if len(parts) == 1:
        return parts[0].text
    return [{"type": "text", "text": p.text} for p in parts]


def render_user_turn(parts: tuple[Part, ...]) -> list[dict[str, Any]]:
    """One unified USER turn -> tool messages, then a user message (if anything is left)."""
    out: list[dict[str, Any]] = []
    rest: list[Part] = []
    for part in parts:
        if isinstance(part, ToolResultPart):
            out.append(_render_tool_result(part))
            moved = [c for c in part.content if isinstance(c, ImagePart)]
            if moved:
                policy.dropped("tool_result image", "moved to the following user message")
            rest.extend(moved)
        else:
            rest.append(part)
    if rest:
        out.append({"role": "user", "content": _render_user_content(rest)})
    return out


def _render_tool_result(result: ToolResultPart) -> dict[str, Any]:
    texts = [c for c in result.content if isinstance(c, TextPart)]
    if result.is_error:
        first = ERROR_PREFIX + texts[0].text if texts else ERROR_PREFIX.rstrip(": ")
        texts = [TextPart(first), *texts[1:]]
    if result.cache_control is not None:
        policy.dropped("tool_result.cache_control", "OpenAI caches prompts automatically")
    content = render_text(tuple(texts)) if texts else ""
    return {"role": "tool", "tool_call_id": result.tool_use_id, "content": content}


def _render_user_content(parts: list[Part]) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return render_text((parts[0],))
    return [_render_user_part(p) for p in parts]


def _render_user_part(part: Part) -> dict[str, Any]:
    if getattr(part, "cache_control", None) is not None:
        policy.dropped("cache_control", "OpenAI caches prompts automatically")
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        src = part.source
        image: dict[str, Any] = {"url": data_url(src) if isinstance(src, Base64Source) else src.url}
        if part.detail is not None:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    if isinstance(part, DocumentPart):
        if not isinstance(part.source, Base64Source):
            raise policy.unsupported("document.source", "OpenAI takes documents inline only")
        file = {"file_data": data_url(part.source)}
        file["filename"] = part.title or "document.pdf"
        return {"type": "file", "file": file}
    raise policy.unsupported(type(part).__name__, "not valid in a user message for OpenAI")
