"""A fake OAuth provider on 127.0.0.1 for the OAuth tests (no tests of its own here).

``FakeOAuthServer`` runs ``http.server`` in a background thread, so both async
tests and the in-process CLI (which runs its own event loop) can talk to it.
It behaves like the real token endpoint where the tests need it to:

* ``authorize(url)`` plays the browser: it checks the authorisation URL's
  parameters, remembers the PKCE challenge and state, and returns the
  ``code#state`` text the provider's callback page shows.
* ``POST <token path>`` with ``grant_type=authorization_code`` checks the code,
  the state, the client id, the redirect URI and that
  ``S256(code_verifier) == code_challenge``; with ``grant_type=refresh_token``
  it accepts only the newest refresh token it issued (refresh tokens rotate:
  a spent one gets ``invalid_grant``). Every answer issues fresh random tokens.
* ``refuse[path] = (status, content_type, body)`` makes a path answer that
  instead (a 403 HTML page, a 500, ...); ``once[path]``, a list of such
  answers, is used up first, one per request (status ``NO_ANSWER``: the
  connection is closed without an answer); ``gate`` (a ``threading.Event``),
  when set up, holds token answers until the test releases it.

Every request is recorded with its path and parsed JSON body. ``secrets()``
lists every token, code and verifier seen, for "never printed" checks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from llm_gateway.config.store import ConfigStore

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
REDIRECT_URI = "https://console.anthropic.com/oauth/code/callback"
TOKEN_PATH = "/v1/oauth/token"
FALLBACK_PATH = "/fallback/v1/oauth/token"
HTML_403 = (403, "text/html", b"<html><body>Please enable JavaScript</body></html>")
JSON_500 = (500, "application/json", b'{"error": {"type": "api_error", "message": "Internal"}}')
#: a ``once`` entry with this status closes the connection without answering
NO_ANSWER = (0, "", b"")


@dataclass
class TokenCall:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _Authorization:
    challenge: str
    state: str
    used: bool = False


@dataclass
class FakeOAuthServer:
    port: int = 0
    expires_in: int = 28800
    calls: list[TokenCall] = field(default_factory=list)
    refuse: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    once: dict[str, list[tuple[int, str, bytes]]] = field(default_factory=dict)
    gate: threading.Event | None = None
    #: refresh token -> still valid
    current_refresh: str | None = None
    issued: list[str] = field(default_factory=list)
    codes: dict[str, _Authorization] = field(default_factory=dict)
    verifiers: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: whose tokens these are: the ``account`` and ``organization`` of token answers
    #: (left out of answers when None)
    owner: dict[str, Any] | None = field(
        default_factory=lambda: {
            "account": {"uuid": "acc-1111", "email_address": "max@example.com"},
            "organization": {"uuid": "org-2222", "name": "Max's Organization"},
        }
    )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the "browser" side -----------------------------------------------------

    def authorize(self, url: str) -> str:
        """Log in at ``url``; the ``code#state`` the callback page would show."""
        query = parse_qs(urlsplit(url).query, strict_parsing=True)
        assert query["response_type"] == ["code"] and query["code"] == ["true"]
        assert query["code_challenge_method"] == ["S256"]
        code = "ac_" + secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = _Authorization(query["code_challenge"][0], query["state"][0])
        return f"{code}#{query['state'][0]}"

    # -- tokens ------------------------------------------------------------------

    def issue(self) -> dict[str, Any]:
        """A fresh token answer; its refresh token becomes the only valid one."""
        access = "sk-ant-oat01-" + secrets.token_urlsafe(32)
        refresh = "sk-ant-ort01-" + secrets.token_urlsafe(32)
        with self.lock:
            self.current_refresh = refresh
            self.issued += [access, refresh]
        return {
            "token_type": "Bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.expires_in,
            **(self.owner or {}),
        }

    def revoke(self) -> None:
        with self.lock:
            self.current_refresh = None

    def token_calls(self, grant_type: str | None = None) -> list[TokenCall]:
        with self.lock:
            return [c for c in self.calls if grant_type in (None, c.body.get("grant_type"))]

    def secrets(self) -> list[str]:
        with self.lock:
            return [*self.issued, *self.codes, *self.verifiers]

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        grant = body.get("grant_type")
        if body.get("client_id") != CLIENT_ID:
            return 401, {"error": "invalid_client"}
        if grant == "authorization_code":
            verifier = str(body.get("code_verifier", ""))
            with self.lock:
                self.verifiers.append(verifier)
                pending = self.codes.get(str(body.get("code")))
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .decode()
                .rstrip("=")
            )
            if (
                pending is None
                or pending.used
                or body.get("state") != pending.state
                or body.get("redirect_uri") != REDIRECT_URI
                or challenge != pending.challenge
            ):
                return 400, {"error": "invalid_grant", "error_description": "bad code"}
            pending.used = True
            return 200, self.issue()
        if grant == "refresh_token":
            with self.lock:
                valid = self.current_refresh is not None and (
                    body.get("refresh_token") == self.current_refresh
                )
            if not valid:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": f"refresh token {body.get('refresh_token')} is invalid",
                }
            return 200, self.issue()
        return 400, {"error": "unsupported_grant_type"}


def _handler(fake: FakeOAuthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"unparsed": raw.decode("latin-1")}
            with fake.lock:
                fake.calls.append(
                    TokenCall(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            if fake.gate is not None:
                fake.gate.wait(10)
            with fake.lock:
                queued = fake.once.get(self.path)
                fault = queued.pop(0) if queued else None
            if fault is not None and fault[0] == NO_ANSWER[0]:
                self.close_connection = True
                return
            if fault is not None:
                status, content_type, payload = fault
            elif self.path in fake.refuse:
                status, content_type, payload = fake.refuse[self.path]
            elif self.path in (TOKEN_PATH, FALLBACK_PATH):
                status, data = fake.answer(self.path, body)
                content_type, payload = "application/json", json.dumps(data).encode()
            else:
                status, content_type, payload = 404, "text/plain", b"not found"
            try:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped waiting (a timeout under test)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


@pytest.fixture
def oauth_server() -> Iterator[FakeOAuthServer]:
    fake = FakeOAuthServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="fake-oauth", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        if fake.gate is not None:
            fake.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def point_oauth_at(store: ConfigStore, fake: FakeOAuthServer, **overrides: Any) -> None:
    """Config overrides: authorize and token URLs on the fake server (fallback on it too)."""
    settings: dict[str, Any] = {
        "authorize_url": fake.base + "/oauth/authorize",
        "token_url": fake.base + TOKEN_PATH,
        "token_fallback_url": fake.base + FALLBACK_PATH,
        **overrides,
    }
    store.update(lambda document: document.update(oauth=settings))


def store_of(home: Path) -> ConfigStore:
    return ConfigStore(home / "config.yaml")


def assert_no_secrets(text: str, fake: FakeOAuthServer) -> None:
    for secret in fake.secrets():
        assert secret not in text


@dataclass
class ForwardProxy:
    """A forwarding HTTP proxy on 127.0.0.1 (absolute-form requests to http:// origins).

    It answers 407 unless ``Proxy-Authorization`` carries ``credentials``, relays
    everything else to the origin and records ``(method, absolute URL)`` in ``seen``.
    """

    credentials: tuple[str, str]
    port: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        user, password = self.credentials
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def urls(self) -> list[str]:
        with self.lock:
            return [url for _, url in self.seen]


def _forward_handler(proxy: ForwardProxy) -> type[BaseHTTPRequestHandler]:
    import http.client

    expected = "Basic " + base64.b64encode(":".join(proxy.credentials).encode()).decode()
    hop_by_hop = {"proxy-authorization", "proxy-connection", "connection", "host"}

    class Handler(BaseHTTPRequestHandler):
        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("proxy-authorization") != expected:
                self.send_response(407)
                self.send_header("proxy-authenticate", 'Basic realm="test"')
                self.send_header("content-length", "0")
                self.end_headers()
                return
            with proxy.lock:
                proxy.seen.append((self.command, self.path))
            target = urlsplit(self.path)
            conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in hop_by_hop}
                path = target.path + (f"?{target.query}" if target.query else "")
                conn.request(self.command, path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
            finally:
                conn.close()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _relay  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def forward_proxy() -> Iterator[ForwardProxy]:
    proxy = ForwardProxy(credentials=("pooluser", "proxy-Secret-9"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _forward_handler(proxy))
    server.daemon_threads = True
    proxy.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
