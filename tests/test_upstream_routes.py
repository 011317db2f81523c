"""URL parsing and request heads: pure."""

from __future__ import annotations

import pytest

from llm_gateway.errors import UpstreamError
from llm_gateway.upstream.proxy import ProxyURL
from llm_gateway.upstream.routes import Origin, Route, build_request_head, parse_target


def test_parse_target() -> None:
    target = parse_target("https://API.Example.com/v1/chat?x=1&y=2#frag")
    assert target.origin == Origin("https", "api.example.com", 443)
    assert target.path == "/v1/chat?x=1&y=2"
    assert parse_target("http://h:8080").path == "/"
    assert parse_target("http://[::1]:9/x").origin.authority == "[::1]:9"


@pytest.mark.parametrize(
    "url", ["ftp://h/", "https:///x", "https://h:99999/", "https://user:sk-secret@h/"]
)
def test_unusable_urls(url: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        parse_target(url)
    assert "sk-secret" not in str(caught.value)


def head_lines(method: str, url: str, route: Route, body: bytes = b"") -> list[tuple[bytes, bytes]]:
    request = build_request_head(method, parse_target(url), route, [("A", "1")], body)
    return [(bytes(k), bytes(v)) for k, v in request.headers.raw_items()]


def test_host_header_omits_default_port() -> None:
    direct = Route(Origin("https", "h", 443))
    assert head_lines("GET", "https://h/", direct) == [(b"Host", b"h"), (b"A", b"1")]
    other = Route(Origin("https", "h", 8443))
    assert head_lines("GET", "https://h:8443/", other)[0] == (b"Host", b"h:8443")


def test_content_length_for_bodies_and_body_methods() -> None:
    route = Route(Origin("http", "h", 80))
    assert (b"Content-Length", b"3") in head_lines("GET", "http://h/", route, b"abc")
    assert (b"Content-Length", b"0") in head_lines("POST", "http://h/", route)
    assert not any(k == b"Content-Length" for k, _ in head_lines("GET", "http://h/", route))


def test_forwarding_uses_absolute_form_and_proxy_auth() -> None:
    proxy = ProxyURL("p", 3128, "u", "pw")
    route = Route(Origin("http", "h", 80), proxy)
    request = build_request_head("GET", parse_target("http://h/x?y"), route, [], b"")
    assert request.target == b"http://h:80/x?y"
    assert (b"proxy-authorization", b"Basic dTpwdw==") in list(request.headers)
    # A tunnelled (https) request carries no proxy credentials: they go on CONNECT.
    tunnel = Route(Origin("https", "h", 443), proxy)
    request = build_request_head("GET", parse_target("https://h/x"), tunnel, [], b"")
    assert request.target == b"/x"
    assert [k for k, _ in request.headers] == [b"host"]


def test_route_label_never_has_credentials() -> None:
    route = Route(Origin("https", "h", 443), ProxyURL("p", 3128, "u", "pw"))
    assert route.label == "h:443 via proxy p:3128"
    assert "pw" not in repr(route)
