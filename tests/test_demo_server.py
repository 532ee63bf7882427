"""The demo's HTTP server on a tiny random model: routes, events, cancellation, disconnects."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import torch

from interp.demo import DemoSession
from interp.demo.catalog import CatalogEntry
from interp.demo.server import DemoServer, RunRegistry, is_loopback
from interp.directions import Direction
from interp.hooks import get_backend
from interp.tiny_models import tiny_model


@pytest.fixture(scope="module")
def server():
    loaded = tiny_model("llama", n_layers=3)
    with torch.no_grad():
        for name, p in loaded.hf_model.named_parameters():
            if "norm" not in name:
                p.mul_(8.0)
    backend = get_backend(loaded, "torch")
    direction = Direction(
        "persona",
        "mean_diff",
        "resid_post",
        "mean_assistant",
        (0, 1, 2),
        torch.randn(3, loaded.d_model, generator=torch.Generator().manual_seed(0)),
    )
    session = DemoSession(
        backend, [CatalogEntry("persona-mean_diff", direction, "test")], max_new_tokens=40
    )
    srv = DemoServer(session, "127.0.0.1", 0)
    srv.serve_in_thread()
    yield srv
    srv.shutdown()
    srv.server_close()


def get(server: DemoServer, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type") or "", body


def run_params(**kw: object) -> str:
    base = {
        "client": "t",
        "item": "gk-001",
        "wrong": "London",
        "sad": "1",
        "belief": "1",
        "direction": "persona-mean_diff",
        "layer": "1",
        "alpha": "0.5",
    }
    return "/api/run?" + urlencode({**base, **kw})


def sse(server: DemoServer, path: str) -> Iterator[dict]:
    """Parsed events of one stream, as they arrive."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    try:
        while True:
            line = resp.fp.readline()
            if not line:
                return
            if line.startswith(b"data: "):
                yield json.loads(line[6:])
    finally:
        conn.close()


def test_page_static_and_config(server):
    status, ctype, body = get(server, "/")
    assert status == 200 and ctype.startswith("text/html") and b"/static/app.js" in body
    for name, kind in (
        ("app.js", "javascript"),
        ("app.css", "css"),
        ("plotly.min.js", "javascript"),
    ):
        status, ctype, body = get(server, f"/static/{name}")
        assert status == 200 and kind in ctype and len(body) > 500, name
    assert b"cdn" not in get(server, "/")[2].lower()
    for bad in ("/static/../session.py", "/static/%2e%2e%2fserver.py", "/nope"):
        assert get(server, bad)[0] == 404
    config = json.loads(get(server, "/api/config")[2])
    assert config["directions"][0]["key"] == "persona-mean_diff" and config["directions"][0][
        "layers"
    ] == [0, 1, 2]
    assert config["presets"][0]["item_id"] == "gk-001" and config["presets"][0]["wrong"] == "London"
    assert config["alpha_limit"] == 1.0 and config["variants"] == ["original", "steered", "ablated"]


def test_run_streams_events_and_invalid_input_is_one_message(server):
    events = list(sse(server, run_params()))
    kinds = [e["type"] for e in events]
    assert (
        kinds[:4] == ["meta", "score", "score", "score"]
        and kinds[-1] == "done"
        and "tokens" in kinds
    )
    assert events[0]["user"].endswith("I think the answer is London.")
    for params, field in (
        ({"alpha": "3"}, "alpha"),
        ({"direction": "x"}, "direction"),
        ({"item": "", "question": ""}, "question"),
        ({"alpha": "abc"}, "alpha"),
    ):
        got = list(sse(server, run_params(**params)))
        assert [e["type"] for e in got] == ["invalid"] and got[0]["field"] == field


def test_new_run_from_same_client_cancels_the_old_one(server):
    old = sse(server, run_params(client="same", alpha="0.1"))
    first = [next(old) for _ in range(5)]  # meta, three scores, first tokens
    assert first[-1]["type"] == "tokens"
    results: list[list[dict]] = []
    old_event = server.runs._runs["same"]
    with server.session._lock:  # hold the old run between two steps while the new one starts
        thread = threading.Thread(
            target=lambda: results.append(list(sse(server, run_params(client="same", alpha="0.2"))))
        )
        thread.start()
        deadline = time.time() + 10
        while server.runs._runs.get("same") is old_event and time.time() < deadline:
            time.sleep(0.01)
        assert old_event.is_set()
    thread.join(60)
    assert results and results[0][-1]["type"] == "done"
    rest = [e["type"] for e in old]
    assert rest[-1] == "cancelled" and "done" not in rest


def test_server_survives_a_browser_closed_mid_stream(server):
    sock = socket.create_connection(server.server_address[:2], timeout=30)
    sock.sendall(f"GET {run_params(client='gone')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = b""
    while b"event: meta" not in received:  # headers and body may arrive in separate reads
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the first event; got {received!r}"
        received += chunk
    sock.close()
    deadline = time.time() + 30
    while time.time() < deadline:
        health = json.loads(get(server, "/api/health")[2])
        if health["active_runs"] == 0:
            break
        time.sleep(0.1)
    assert health == {"ok": True, "active_runs": 0}
    assert list(sse(server, run_params(client="after")))[-1]["type"] == "done"


def test_cancel_endpoint_and_registry():
    reg = RunRegistry()
    a = reg.start("c")
    b = reg.start("c")
    assert a.is_set() and not b.is_set() and reg.active() == 1
    assert reg.cancel("c") and b.is_set() and not reg.cancel("c")
    c = reg.start("d")
    reg.finish("d", a)  # not d's run: kept
    assert reg.active() == 1
    reg.finish("d", c)
    assert reg.active() == 0
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_cancel_route(server):
    stream = sse(server, run_params(client="stop"))
    next(stream)
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    conn.request("POST", "/api/cancel?client=stop")
    assert json.loads(conn.getresponse().read()) == {"cancelled": True}
    conn.close()
    assert [e["type"] for e in stream][-1] == "cancelled"
    _ = threading.active_count()
