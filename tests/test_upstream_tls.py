"""TLS: verification against certifi's roots, a caller's context, and verify_tls=False."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from upstream_fakes import CertFiles, FakeServer, keep_alive, make_cert, ok, run

from llm_gateway.upstream import ConnectionPool, TLSError


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    files = make_cert(Path(tmp_path_factory.mktemp("tls")))
    if files is None:
        pytest.skip("the openssl CLI is needed to make a self-signed test certificate")
    return files


async def get(pool: ConnectionPool, url: str, *, verify_tls: bool = True) -> bytes:
    response = await pool.request("GET", url, headers=[], verify_tls=verify_tls)
    async with response:
        return await response.aread()


def test_self_signed_certificate_fails_verification(cert: CertFiles) -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok), cert.server_context()) as server:
            pool = ConnectionPool()
            with pytest.raises(TLSError) as caught:
                await get(pool, server.url("/x", host="localhost"))
            message = str(caught.value)
            assert message.startswith(f"TLS handshake with localhost:{server.port} failed:")
            assert "certificate verify failed" in message
            assert caught.value.status == 502
            assert pool.stats().origins == {}
            await pool.aclose()

    run(scenario())


def test_caller_context_trusting_the_certificate(cert: CertFiles) -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok), cert.server_context()) as server:
            pool = ConnectionPool(ssl_context=cert.client_context())
            assert await get(pool, server.url("/a", host="localhost")) == b"ok /a"
            assert await get(pool, server.url("/b", host="localhost")) == b"ok /b"
            assert await get(pool, server.url("/c", host="127.0.0.1")) == b"ok /c"
            stats = pool.stats()
            await pool.aclose()
        assert server.accepted == 2  # one per origin, kept alive over TLS
        assert stats.opened == 2

    run(scenario())


def test_verify_tls_false_connects_and_warns_once_per_origin(
    cert: CertFiles, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok), cert.server_context()) as server:
            pool = ConnectionPool()
            with caplog.at_level(logging.WARNING, logger="llm_gateway.upstream"):
                for host in ("localhost", "localhost", "127.0.0.1"):
                    assert await get(pool, server.url("/", host=host), verify_tls=False) == b"ok /"
            await pool.aclose()
        port = server.port
        assert [r.getMessage() for r in caplog.records if r.name == "llm_gateway.upstream"] == [
            f"TLS certificate verification is disabled for https://localhost:{port}",
            f"TLS certificate verification is disabled for https://127.0.0.1:{port}",
        ]

    run(scenario())


def test_unverified_connection_is_not_reused_for_a_verified_request(cert: CertFiles) -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok), cert.server_context()) as server:
            pool = ConnectionPool(ssl_context=cert.client_context())
            url = server.url("/", host="localhost")
            await get(pool, url, verify_tls=False)
            await get(pool, url, verify_tls=True)
            await get(pool, url, verify_tls=False)
            await pool.aclose()
        assert server.accepted == 2

    run(scenario())
