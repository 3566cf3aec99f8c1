"""The HTTP server as `facegate serve` runs it (api/server.py): real uvicorn over real sockets."""

import contextlib
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from api.server import server_options
from core.settings import get_settings


@contextlib.contextmanager
def serving(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", **server_options(get_settings())
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)


def held_for(port: int, head: bytes, *, byte_every_s: float, limit_s: float) -> float:
    """Send `head` a byte at a time (slowloris); how long the server kept the connection open."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as conn:
        for byte in head:
            try:
                conn.sendall(bytes([byte]))
            except OSError:  # closed by the server
                break
            conn.settimeout(byte_every_s)
            try:
                if conn.recv(4096) == b"":
                    break
            except TimeoutError:
                pass
            if time.monotonic() - started > limit_s:
                break
    return time.monotonic() - started


def test_a_request_head_sent_slowly_is_cut_off(anonymous, monkeypatch):
    monkeypatch.setattr(get_settings(), "header_timeout_seconds", 1.0)
    head = b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with serving(anonymous.app) as port:
        assert httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200  # a normal client is served
        held = held_for(port, head, byte_every_s=0.2, limit_s=15)
        # A kept-alive connection's next request is on the same deadline.
        with httpx.Client() as client:
            assert client.get(f"http://127.0.0.1:{port}/health/live").status_code == 200
            assert client.get(f"http://127.0.0.1:{port}/health/live").status_code == 200
    assert held < 5, f"a slow request head held the connection {held:.1f} s"


@pytest.mark.parametrize(("trusted", "secure"), [("127.0.0.1", True), ("10.9.9.9", False)])
def test_sign_in_cookies_are_secure_behind_a_trusted_tls_proxy(anonymous, monkeypatch, trusted, secure):
    monkeypatch.setattr(get_settings(), "trusted_proxies", trusted)
    with serving(anonymous.app) as port:
        proxied = httpx.get(f"http://127.0.0.1:{port}/admin/login", headers={"X-Forwarded-Proto": "https"})
        direct = httpx.get(f"http://127.0.0.1:{port}/admin/login")
    assert ("secure" in proxied.headers["set-cookie"].lower()) is secure
    assert "secure" not in direct.headers["set-cookie"].lower()
