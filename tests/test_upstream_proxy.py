"""Proxy selection (pure) and proxying over sockets: CONNECT tunnels and forwarding."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from upstream_fakes import (
    CertFiles,
    ConnectProxy,
    FakeServer,
    Recorded,
    closed_port,
    keep_alive,
    make_cert,
    ok,
    run,
)

from llm_gateway.upstream import (
    ConnectionPool,
    ProxyError,
    ProxySettings,
    ProxyURL,
    parse_proxy_url,
    proxy_for,
)
from llm_gateway.upstream.proxy import bypasses_proxy, redact_proxy_url

# -- settings and parsing ---------------------------------------------------------


def test_config_values_win_over_environment() -> None:
    environ = {"HTTPS_PROXY": "http://env:1", "http_proxy": "http://envlow:2", "NO_PROXY": "env"}
    config = {"https_proxy": "http://cfg:3", "http_proxy": None, "no_proxy": ""}
    assert ProxySettings.from_sources(config, environ) == ProxySettings(
        http_proxy="http://envlow:2", https_proxy="http://cfg:3", no_proxy=None
    )


def test_lowercase_environment_variable_first() -> None:
    environ = {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2", "NO_PROXY": "a.b"}
    assert ProxySettings.from_sources({}, environ) == ProxySettings(None, "http://low:1", "a.b")
    assert ProxySettings.from_sources({}, {}) == ProxySettings()


def test_parse_proxy_url() -> None:
    proxy = parse_proxy_url("http://us%40er:p%3Ass@Proxy.Local:3128/")
    assert (proxy.host, proxy.port, proxy.username, proxy.password) == (
        "proxy.local", 3128, "us@er", "p:ss",
    )  # fmt: skip
    assert proxy.authorization == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert str(proxy) == "http://proxy.local:3128"
    assert "p:ss" not in repr(proxy) and "p%3Ass" not in repr(proxy)
    assert parse_proxy_url("proxy:8080") == ProxyURL("proxy", 8080)
    assert parse_proxy_url("http://[::1]").address == "[::1]:80"
    assert parse_proxy_url("http://proxy:1").authorization is None


@pytest.mark.parametrize(
    "text", ["socks5://u:secret@proxy:1080", "http://u:secret@proxy:notaport", "http://:1"]
)
def test_unusable_proxy_urls_are_refused_without_credentials(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_proxy_url(text)
    assert "secret" not in str(caught.value)
    with pytest.raises(ProxyError) as wrapped:
        proxy_for("https://api.example.com/", ProxySettings(https_proxy=text))
    assert "secret" not in str(wrapped.value)


def test_proxy_for_picks_by_scheme() -> None:
    settings = ProxySettings(http_proxy="http://plain:1", https_proxy="http://tls:2")
    assert proxy_for("http://api.example.com/x", settings) == ProxyURL("plain", 1)
    assert proxy_for("https://api.example.com/x", settings) == ProxyURL("tls", 2)
    assert proxy_for("https://api.example.com/", ProxySettings(http_proxy="http://p:1")) is None


NO_PROXY = "localhost, .internal.example, corp.example,*.wild.example, 10.0.0.0/8, 192.168.1.7, [::1], fd00::/8, special.example:8443, 172.16.0.1:80,bad entry/,"


@pytest.mark.parametrize(
    ("host", "port", "bypass"),
    [
        ("localhost", 443, True),
        ("LOCALHOST.", 443, True),
        ("notlocalhost", 443, False),
        ("internal.example", 443, True),
        ("api.internal.example", 443, True),
        ("corp.example", 443, True),
        ("a.b.corp.example", 443, True),
        ("xcorp.example", 443, False),
        ("wild.example", 443, True),
        ("x.wild.example", 443, True),
        ("10.1.2.3", 443, True),
        ("11.1.2.3", 443, False),
        ("192.168.1.7", 443, True),
        ("192.168.1.8", 443, False),
        ("::1", 443, True),
        ("[::1]", 443, True),
        ("fd12::5", 443, True),
        ("fe80::1", 443, False),
        ("special.example", 8443, True),
        ("special.example", 443, False),
        ("172.16.0.1", 80, True),
        ("172.16.0.1", 443, False),
        ("api.openai.com", 443, False),
    ],
)
def test_no_proxy_matching(host: str, port: int, bypass: bool) -> None:
    assert bypasses_proxy(host, port, NO_PROXY) is bypass


def test_no_proxy_star_and_empty() -> None:
    assert bypasses_proxy("anything.example", 443, "*")
    assert bypasses_proxy("anything.example", 443, "foo, *")
    assert not bypasses_proxy("anything.example", 443, "")
    assert not bypasses_proxy("anything.example", 443, None)
    settings = ProxySettings(https_proxy="http://p:1", no_proxy="api.example.com")
    assert proxy_for("https://API.example.com:443/v1", settings) is None


@settings(max_examples=50, deadline=None)
@given(
    labels=st.lists(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), min_size=1, max_size=3),
    domain=st.from_regex(r"[a-z]{1,8}\.[a-z]{2,4}", fullmatch=True),
)
def test_no_proxy_domain_matches_itself_and_every_subdomain(labels: list[str], domain: str) -> None:
    subdomain = ".".join([*labels, domain])
    for entry in (domain, "." + domain):
        assert bypasses_proxy(domain, 443, entry)
        assert bypasses_proxy(subdomain, 443, entry)
        assert not bypasses_proxy("x" + domain, 443, entry)


# -- over sockets -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    files = make_cert(Path(tmp_path_factory.mktemp("tls")))
    if files is None:
        pytest.skip("the openssl CLI is needed to make a self-signed test certificate")
    return files


@pytest.mark.parametrize("credentials", [None, ("alice", "s3cr:et")])
def test_https_through_connect_proxy(cert: CertFiles, credentials: tuple[str, str] | None) -> None:
    async def scenario() -> None:
        proxy = ConnectProxy(credentials)
        log: list[Recorded] = []
        async with (
            FakeServer(keep_alive(ok, log), cert.server_context()) as origin,
            FakeServer(proxy.handle) as proxy_server,
        ):
            userinfo = "alice:s3cr%3Aet@" if credentials else ""
            settings = ProxySettings(https_proxy=f"http://{userinfo}127.0.0.1:{proxy_server.port}")
            pool = ConnectionPool(proxy=settings, ssl_context=cert.client_context())
            for path in ("/a", "/b"):
                response = await pool.request("GET", origin.url(path, host="localhost"), headers=[])
                assert await response.aread() == f"ok {path}".encode()
            await pool.aclose()
        assert proxy_server.accepted == 1  # the tunnel is kept alive
        connect = proxy.seen[0]
        assert (connect.method, connect.target) == ("CONNECT", f"localhost:{origin.port}")
        expected = [("host", f"localhost:{origin.port}")]
        if credentials:
            token = base64.b64encode(b"alice:s3cr:et").decode()
            expected.append(("proxy-authorization", f"Basic {token}"))
        assert connect.headers == expected
        # The origin sees an ordinary request: no proxy credentials leak to it.
        assert [(r.target, r.headers) for r in log] == [
            ("/a", [("host", f"localhost:{origin.port}")]),
            ("/b", [("host", f"localhost:{origin.port}")]),
        ]

    run(scenario())


def test_proxy_auth_required_is_proxy_error() -> None:
    async def scenario() -> None:
        proxy = ConnectProxy(("alice", "right"))
        async with FakeServer(proxy.handle) as proxy_server:
            settings = ProxySettings(
                https_proxy=f"http://alice:wrong@127.0.0.1:{proxy_server.port}"
            )
            pool = ConnectionPool(proxy=settings)
            with pytest.raises(ProxyError) as caught:
                await pool.request("GET", "https://127.0.0.1:9/", headers=[])
            await pool.aclose()
        message = str(caught.value)
        assert message == (
            f"proxy 127.0.0.1:{proxy_server.port} refused CONNECT to 127.0.0.1:9: "
            "407 Proxy Authentication Required"
        )
        assert "wrong" not in message and "alice" not in message
        assert caught.value.status == 502

    run(scenario())


def test_unreachable_proxy_is_proxy_error() -> None:
    async def scenario() -> None:
        port = closed_port()
        pool = ConnectionPool(proxy=ProxySettings(https_proxy=f"http://bob:pw@127.0.0.1:{port}"))
        with pytest.raises(ProxyError) as caught:
            await pool.request("GET", "https://127.0.0.1:9/", headers=[])
        assert str(caught.value).startswith(f"connecting to proxy 127.0.0.1:{port} failed:")
        assert "pw" not in str(caught.value)
        await pool.aclose()

    run(scenario())


def test_plain_http_is_forwarded_in_absolute_form() -> None:
    async def scenario() -> None:
        log: list[Recorded] = []
        async with FakeServer(keep_alive(ok, log)) as proxy_server:
            settings = ProxySettings(http_proxy=f"http://carol:pw@127.0.0.1:{proxy_server.port}")
            pool = ConnectionPool(proxy=settings)
            response = await pool.request("GET", "http://upstream.test:8080/v1/x?q=1", headers=[])
            assert await response.aread() == b"ok http://upstream.test:8080/v1/x?q=1"
            await pool.aclose()
        token = base64.b64encode(b"carol:pw").decode()
        assert log[0].headers == [
            ("host", "upstream.test:8080"),
            ("proxy-authorization", f"Basic {token}"),
        ]

    run(scenario())


def test_no_proxy_host_is_reached_directly() -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok)) as server:
            dead_proxy = f"http://127.0.0.1:{closed_port()}"
            settings = ProxySettings(http_proxy=dead_proxy, no_proxy="127.0.0.0/8")
            pool = ConnectionPool(proxy=settings)
            response = await pool.request("GET", server.url("/direct"), headers=[])
            assert await response.aread() == b"ok /direct"
            await pool.aclose()

    run(scenario())


def test_a_request_may_name_its_own_proxy_over_the_pools_settings() -> None:
    """An upstream account's own proxy: used for its requests only, credentials sent."""

    async def scenario() -> None:
        log: list[Recorded] = []
        async with FakeServer(keep_alive(ok)) as origin, FakeServer(keep_alive(ok, log)) as own:
            dead = f"http://127.0.0.1:{closed_port()}"
            pool = ConnectionPool(proxy=ProxySettings(http_proxy=dead, no_proxy="127.0.0.0/8"))
            own_proxy = f"http://dave:p%40ss@127.0.0.1:{own.port}"
            response = await pool.request(
                "GET", "http://upstream.test:8080/v1/x", headers=[], proxy=own_proxy
            )
            assert await response.aread() == b"ok http://upstream.test:8080/v1/x"
            # the same origin without the account's proxy follows the pool's settings
            direct = await pool.request("GET", origin.url("/direct"), headers=[])
            assert await direct.aread() == b"ok /direct"
            with pytest.raises(ProxyError) as caught:
                await pool.request("GET", origin.url("/"), headers=[], proxy="socks5://u:pw@h:1")
            assert "pw" not in str(caught.value)
            await pool.aclose()
        token = base64.b64encode(b"dave:p@ss").decode()
        assert [request.target for request in log] == ["http://upstream.test:8080/v1/x"]
        assert ("proxy-authorization", f"Basic {token}") in log[0].headers

    run(scenario())


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:secret@proxy.test:3128", "http://***@proxy.test:3128"),
        ("http://user:se/cr@t@proxy.test:3128/", "http://***@proxy.test:3128/"),
        ("proxy.test:3128", "proxy.test:3128"),
        ("alice@proxy.test", "***@proxy.test"),
        ("http://proxy.test:3128", "http://proxy.test:3128"),
    ],
)
def test_proxy_urls_are_shown_without_credentials(text: str, shown: str) -> None:
    assert redact_proxy_url(text) == shown
