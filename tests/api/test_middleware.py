"""The request guard on a real HTTP server: a bug's 500 is JSON and keeps the keep-alive connection usable."""

import http.client
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from api.middleware import RequestGuard
from core.settings import Settings


def broken(_request):
    raise RuntimeError("a bug")


def fine(_request):
    return PlainTextResponse("ok")


def test_a_500_keeps_the_connection_alive():
    # As in api.main: the guard sits inside Starlette's outermost error middleware, which re-raises (and so drops
    # the connection) for any exception that reaches it.
    app = Starlette(
        routes=[Route("/broken", broken), Route("/fine", fine)],
        middleware=[Middleware(RequestGuard, settings=Settings())],
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/broken")
        failed = connection.getresponse()
        assert failed.status == 500 and b'"internal_error"' in failed.read()
        assert failed.getheader("connection") != "close" and failed.getheader("x-frame-options") == "DENY"
        sock = connection.sock
        connection.request("GET", "/fine")  # the same socket: http.client would fail here if it was closed
        ok = connection.getresponse()
        assert ok.status == 200 and ok.read() == b"ok" and connection.sock is sock
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_batch_signup_may_carry_a_photo_per_member():
    async def echo(request):
        return PlainTextResponse(str(len(await request.body())))

    settings = Settings(max_upload_bytes=100, max_faces_per_member=1, max_batch_members=3, max_json_body_bytes=10)
    app = Starlette(
        routes=[Route(path, echo, methods=["POST"]) for path in ("/v1/members", "/v1/members/batch")],
        middleware=[Middleware(RequestGuard, settings=settings)],
    )
    headers = {"content-type": "multipart/form-data; boundary=x"}
    with TestClient(app) as client:
        assert client.post("/v1/members", content=b"x" * 250, headers=headers).status_code == 413  # 1 x 100 + 10
        assert client.post("/v1/members/batch", content=b"x" * 250, headers=headers).text == "250"  # 3 x 100 + 10
        too_large = client.post("/v1/members/batch", content=b"x" * 311, headers=headers)
        assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "body_too_large"
