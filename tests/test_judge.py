"""The chat client and the LLM judge against a scripted local HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from interp.judge import (
    JUDGE_PROMPT_VERSION,
    REPAIR_MESSAGE,
    JudgeRow,
    judge_messages,
    judge_rows,
    load_cache,
    parse_verdict,
    row_key,
)
from interp.llm_client import ChatClient, EndpointError, RateLimiter, RetryPolicy

FAST = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_max=0.01, jitter=0.5)

# ---------------------------------------------------------------- a scripted server


def ok(text: str) -> dict[str, Any]:
    return {"kind": "ok", "text": text}


def status(code: int, body: str = "oops", headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"kind": "status", "code": code, "body": body, "headers": headers or {}}


def slow(seconds: float, then: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "sleep", "seconds": seconds, "then": then}


DROP = {"kind": "drop"}
Responder = Callable[[dict[str, Any], int], dict[str, Any]]


class Server:
    """A chat-completions server on 127.0.0.1 whose replies a test scripts.

    ``script`` is a list of actions used in order (the last one repeats) or a function
    ``(request_json, n) -> action``; every request is recorded with its arrival time.
    """

    def __init__(self, script: list[dict[str, Any]] | Responder):
        self.script = script
        self.requests: list[tuple[float, dict[str, Any], dict[str, str]]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(
                    self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"
                )
                with server.lock:
                    n = len(server.requests)
                    server.requests.append((time.monotonic(), body, dict(self.headers)))
                    action = server._action(body, n)
                server._perform(self, action, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _action(self, body: dict[str, Any], n: int) -> dict[str, Any]:
        if callable(self.script):
            return self.script(body, n)
        return self.script[min(n, len(self.script) - 1)]

    def _perform(
        self, h: BaseHTTPRequestHandler, action: dict[str, Any], body: dict[str, Any]
    ) -> None:
        kind = action["kind"]
        if kind == "sleep":
            time.sleep(action["seconds"])
            return self._perform(h, action["then"], body)
        if kind == "drop":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return None
        if kind == "ok":
            code, headers = 200, {}
            payload = json.dumps({
                "id": "x", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0,
                             "message": {"role": "assistant", "content": action["text"]},
                             "finish_reason": "stop"}],
            }).encode()  # fmt: skip
        elif kind == "raw":
            code, headers, payload = 200, {}, action["body"].encode()
        else:
            code, headers, payload = action["code"], action["headers"], action["body"].encode()
        try:
            h.send_response(code)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass
        return None

    @property
    def n(self) -> int:
        with self.lock:
            return len(self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def serve():
    servers: list[Server] = []

    def start(script):
        s = Server(script)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def client_for(server: Server, **kw: Any) -> ChatClient:
    kw.setdefault("retry", FAST)
    kw.setdefault("timeout", 2.0)
    return ChatClient(server.url, "judge-model", api_key=kw.pop("api_key", "sk-test"), **kw)


MSG = [{"role": "user", "content": "hi"}]

# ---------------------------------------------------------------- the client


def test_complete_sends_an_openai_request_and_returns_the_text(serve):
    s = serve([ok("hello")])
    with client_for(s) as c:
        assert c.complete(MSG, temperature=0.3, max_tokens=7, extra={"seed": 1}) == "hello"
    _, body, headers = s.requests[0]
    assert body == {
        "model": "judge-model",
        "messages": MSG,
        "temperature": 0.3,
        "max_tokens": 7,
        "seed": 1,
    }
    assert headers["Authorization"] == "Bearer sk-test"


def test_no_api_key_sends_no_authorization(serve):
    s = serve([ok("x")])
    with client_for(s, api_key=None) as c:
        c.complete(MSG)
    assert "Authorization" not in s.requests[0][2]


def test_5xx_is_retried_then_succeeds(serve):
    s = serve([status(500), status(503), ok("fine")])
    with client_for(s) as c:
        assert c.complete(MSG) == "fine"
    assert s.n == 3


def test_5xx_retries_run_out(serve):
    s = serve([status(502, body="bad gateway " * 100)])
    with client_for(s) as c, pytest.raises(EndpointError) as info:
        c.complete(MSG)
    err = info.value
    assert s.n == FAST.max_retries + 1 and err.attempts == s.n
    assert (
        err.status == 502 and err.retryable and len(err.body) <= 300 and "bad gateway" in str(err)
    )


def test_429_honours_retry_after(serve):
    s = serve(
        [
            status(429, headers={"Retry-After": "0.3"}),
            status(429, headers={"retry-after-ms": "200"}),
            ok("done"),
        ]
    )
    with client_for(s) as c:
        assert c.complete(MSG) == "done"
    t = [r[0] for r in s.requests]
    assert t[1] - t[0] >= 0.28 and t[2] - t[1] >= 0.18  # the backoff alone would be ~1 ms


def test_4xx_is_not_retried(serve):
    s = serve([status(400, body='{"error": "context length exceeded"}')])
    with client_for(s) as c, pytest.raises(EndpointError) as info:
        c.complete(MSG)
    assert s.n == 1 and info.value.status == 400 and not info.value.retryable
    assert "context length" in info.value.body


def test_unexpected_reply_shape(serve):
    s = serve([{"kind": "raw", "body": '{"choices": []}'}])
    with client_for(s) as c, pytest.raises(EndpointError, match="unexpected reply shape"):
        c.complete(MSG)
    assert s.n == 1


def test_slow_reply_times_out_and_is_retried(serve):
    s = serve([slow(0.6, ok("late")), ok("on time")])
    with client_for(s, timeout=0.15) as c:
        assert c.complete(MSG) == "on time"
    s2 = serve([slow(0.6, ok("late"))])
    retry = RetryPolicy(max_retries=1, backoff_base=0.001)
    with (
        client_for(s2, timeout=0.1, retry=retry) as c,
        pytest.raises(EndpointError, match="timeout") as info,
    ):
        c.complete(MSG)
    assert info.value.status is None and info.value.attempts == 2


def test_dropped_connection_is_retried(serve):
    s = serve([DROP, DROP, ok("back")])
    with client_for(s) as c:
        assert c.complete(MSG) == "back"
    assert s.n == 3


def test_refused_connection_raises_after_retries():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the client connects
    url = f"http://127.0.0.1:{port}/v1"
    with (
        ChatClient(url, "m", retry=FAST, timeout=0.5) as c,
        pytest.raises(EndpointError, match="connection error") as info,
    ):
        c.complete(MSG)
    assert info.value.attempts == FAST.max_retries + 1


def test_rate_limit_spaces_requests_across_threads(serve):
    s = serve([ok("x")])
    with client_for(s, max_requests_per_second=25, max_workers=4) as c:
        sent: list[float] = []
        acquire = c.limiter.acquire

        def timed_acquire():
            waited = acquire()
            sent.append(time.monotonic())
            return waited

        c.limiter.acquire = timed_acquire  # type: ignore[method-assign]
        out = c.complete_many([MSG] * 8)
    assert out == ["x"] * 8 and len(sent) == 8
    sent.sort()
    gaps = sorted(b - a for a, b in itertools.pairwise(sent))
    assert gaps[len(gaps) // 2] >= 0.035, gaps  # slots 0.04 s apart (a busy CPU may wake late)
    assert sent[-1] - sent[0] >= 0.27  # 7 slots after the first: late wake-ups only stretch it
    arrived = sorted(r[0] for r in s.requests)
    assert arrived[-1] - arrived[0] >= 0.2  # as seen by the server


def test_rate_limiter_slots_are_exact_across_threads():
    now = [100.0]
    slept: list[float] = []
    lock = threading.Lock()

    def fake_sleep(seconds):
        with lock:
            slept.append(seconds)

    lim = RateLimiter(10, clock=lambda: now[0], sleep=fake_sleep)
    threads = [threading.Thread(target=lim.acquire) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(round(x, 9) for x in slept) == [0.1, 0.2, 0.3, 0.4]  # the first goes at once


def test_rate_limiter_alone():
    lim = RateLimiter(50)
    start = time.monotonic()
    for _ in range(6):
        lim.acquire()
    assert time.monotonic() - start >= 0.09
    assert RateLimiter(None).acquire() == 0.0
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_complete_many_keeps_order_and_returns_errors_in_place(serve):
    def echo(body, n):
        text = body["messages"][-1]["content"]
        return (
            status(400, body="no")
            if text == "bad"
            else slow(0.05 if text == "a" else 0.0, ok(text.upper()))
        )

    s = serve(echo)
    convs = [[{"role": "user", "content": t}] for t in ("a", "b", "bad", "c")]
    with client_for(s, max_workers=4) as c:
        out = c.complete_many(convs)
    assert out[:2] == ["A", "B"] and out[3] == "C"
    assert isinstance(out[2], EndpointError) and out[2].status == 400


def test_client_validates_settings():
    with pytest.raises(ValueError):
        ChatClient("127.0.0.1:8000", "m")
    with pytest.raises(ValueError):
        ChatClient("http://127.0.0.1:8000", "")


# ---------------------------------------------------------------- the judge


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("CORRECT", "CORRECT"),
        ("incorrect", "INCORRECT"),
        (" Correct. ", "CORRECT"),
        ("**INCORRECT**", "INCORRECT"),
        ("Answer: CORRECT", "CORRECT"),
        ("Final verdict: incorrect!", "INCORRECT"),
        ('"CORRECT"', "CORRECT"),
        ("INCORRECT\n\nThe response names Lyon.", "INCORRECT"),
        ("The response names Paris.\nCORRECT", "CORRECT"),
        ("NOT CORRECT", None),
        ("CORRECT or INCORRECT", None),
        ("The answer is correct", None),
        ("maybe", None),
        ("", None),
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) == verdict


def rows(n: int, task: str = "general_knowledge") -> list[JudgeRow]:
    return [
        JudgeRow(
            f"Q{i}: capital of France?",
            "Paris",
            "Lyon",
            "It is Paris." if i % 2 == 0 else f"It is Lyon ({i}).",
            task,
            id=f"r{i}",
        )
        for i in range(n)
    ]  # fmt: skip


def grader(body: dict[str, Any], n: int) -> dict[str, Any]:
    """A fake judge: CORRECT when the graded response says Paris."""
    user = body["messages"][1]["content"]
    response = user.split("<response>")[1].split("</response>")[0]
    return ok("CORRECT" if "Paris" in response else "Incorrect.")


def test_judge_prompt():
    row = rows(1)[0]
    msgs = judge_messages(row)
    assert msgs[0]["role"] == "system" and "CORRECT or INCORRECT" in msgs[0]["content"]
    user = msgs[1]["content"]
    for part in (row.question, "Paris", "Lyon", row.response):
        assert part in user
    assert "false claim" not in user
    assert (
        "false claim"
        in judge_messages(JudgeRow("q", "No", "Yes", "r", "disinformation"))[1]["content"]
    )


def test_cache_key():
    row = rows(1)[0]
    k = row_key(row, "m")
    assert k == row_key(
        JudgeRow(row.question, row.reference, row.incorrect, row.response, row.task, id="other"),
        "m",
    )
    assert k != row_key(row, "m2")
    assert k != row_key(row, "m", prompt_version=JUDGE_PROMPT_VERSION + "x")
    assert k != row_key(
        JudgeRow(row.question, row.reference, row.incorrect, row.response + " ", row.task), "m"
    )


def test_judge_rows_in_order_then_all_from_the_cache(serve, tmp_path):
    s = serve(grader)
    cache = tmp_path / "judge.jsonl"
    data = rows(10)
    with client_for(s, max_workers=4) as c:
        out = judge_rows(data, c, cache, show_progress=False)
        assert [r.label for r in out] == ["CORRECT", "INCORRECT"] * 5
        assert [r.id for r in out] == [r.id for r in data]
        assert all(r.attempts == 1 and r.judge_model == "judge-model" for r in out)
        assert s.n == 10
        lines = cache.read_text().splitlines()
        assert len(lines) == 10 and len({json.loads(ln)["key"] for ln in lines}) == 10
        again = judge_rows(data, c, cache, show_progress=False)
    assert s.n == 10, "the second run asked nothing"
    assert [r.label for r in again] == [r.label for r in out]
    assert all(r.attempts == 0 for r in again)
    assert len(cache.read_text().splitlines()) == 10
    for body in (r[1] for r in s.requests):
        assert body["temperature"] == 0.0


def test_duplicate_rows_are_asked_once(serve, tmp_path):
    s = serve(grader)
    data = rows(2)
    dup = [
        data[0],
        data[1],
        JudgeRow(
            *[
                getattr(data[0], f)
                for f in ("question", "reference", "incorrect", "response", "task")
            ],
            id="copy",
        ),
    ]
    with client_for(s) as c:
        out = judge_rows(dup, c, tmp_path / "c.jsonl", show_progress=False)
    assert s.n == 2 and [r.id for r in out] == ["r0", "r1", "copy"] and out[2].label == "CORRECT"


def test_malformed_reply_is_repaired_or_recorded_as_error(serve, tmp_path):
    def judge(body, n):
        user = body["messages"][1]["content"]
        repaired = body["messages"][-1]["content"] == REPAIR_MESSAGE
        if "stubborn" in user:
            return ok("I think it's probably fine")
        return ok("CORRECT") if repaired else ok("Hmm, let me think.")

    s = serve(judge)
    data = [
        JudgeRow("q", "Paris", "Lyon", "Paris", "general_knowledge"),
        JudgeRow("q", "Paris", "Lyon", "stubborn Paris", "general_knowledge"),
    ]
    with client_for(s) as c:
        out = judge_rows(data, c, tmp_path / "c.jsonl", max_attempts=3, show_progress=False)
    assert out[0].label == "CORRECT" and out[0].attempts == 2 and "malformed" in out[0].reason
    assert out[1].label == "ERROR" and out[1].attempts == 3 and "probably fine" in out[1].reason
    assert s.n == 5
    repair = next(
        r[1] for r in s.requests
        if r[1]["messages"][-1]["content"] == REPAIR_MESSAGE
        and "stubborn" not in r[1]["messages"][1]["content"]
    )  # fmt: skip
    assert repair["messages"][2] == {"role": "assistant", "content": "Hmm, let me think."}


def test_endpoint_errors_are_recorded_per_row(serve, tmp_path):
    def judge(body, n):
        user = body["messages"][1]["content"]
        if "BADREQ" in user:
            return status(400, body="content filter")
        if "DOWN" in user:
            return status(503)
        if "SLOW" in user:
            return slow(0.5, ok("CORRECT"))
        return grader(body, n)

    s = serve(judge)
    data = rows(4) + [
        JudgeRow("q", "Paris", "Lyon", f"Paris {tag}", "general_knowledge", id=tag)
        for tag in ("BADREQ", "DOWN", "SLOW")
    ]  # fmt: skip
    cache = tmp_path / "c.jsonl"
    with client_for(s, timeout=0.1, retry=RetryPolicy(max_retries=1, backoff_base=0.001)) as c:
        out = judge_rows(data, c, cache, show_progress=False)
    assert [r.label for r in out[:4]] == ["CORRECT", "INCORRECT"] * 2
    assert [r.label for r in out[4:]] == ["ERROR"] * 3
    assert (
        "HTTP 400" in out[4].reason and "HTTP 503" in out[5].reason and "timeout" in out[6].reason
    )
    assert len(cache.read_text().splitlines()) == 7


def test_error_rows_are_asked_again_unless_told_not_to(serve, tmp_path):
    answers = iter([status(400), ok("CORRECT")])
    s = serve(lambda body, n: next(answers))
    cache = tmp_path / "c.jsonl"
    data = [JudgeRow("q", "Paris", "Lyon", "Paris", "general_knowledge")]
    with client_for(s) as c:
        assert judge_rows(data, c, cache, show_progress=False)[0].label == "ERROR"
        assert (
            judge_rows(data, c, cache, retry_errors=False, show_progress=False)[0].label == "ERROR"
        )
        assert s.n == 1
        assert judge_rows(data, c, cache, show_progress=False)[0].label == "CORRECT"
        assert s.n == 2
        assert judge_rows(data, c, cache, show_progress=False)[0].label == "CORRECT"
    assert s.n == 2 and len(cache.read_text().splitlines()) == 2
    assert next(iter(load_cache(cache).values())).label == "CORRECT"


def test_rejected_credentials_stop_the_batch(serve, tmp_path):
    s = serve([status(401, body="invalid api key")])
    with client_for(s) as c, pytest.raises(EndpointError) as info:
        judge_rows(rows(3), c, tmp_path / "c.jsonl", show_progress=False)
    assert info.value.status == 401


class Killed(Exception):
    pass


def test_resume_after_an_interruption(serve, tmp_path):
    s = serve(lambda body, n: slow(0.01, grader(body, n)))
    cache = tmp_path / "c.jsonl"
    data = rows(12)
    seen = []

    def kill_after_four(result):
        seen.append(result.key)
        if len(seen) == 4:
            raise Killed

    with client_for(s, max_workers=3) as c:
        with pytest.raises(Killed):
            judge_rows(data, c, cache, show_progress=False, on_result=kill_after_four)
        assert len(cache.read_text().splitlines()) == 4
        first = s.n
        out = judge_rows(data, c, cache, show_progress=False)
    assert s.n - first == 8, "only the unfinished rows were asked again"
    lines = [json.loads(ln) for ln in cache.read_text().splitlines()]
    assert len(lines) == 12 and len({ln["key"] for ln in lines}) == 12
    assert [r.label for r in out] == ["CORRECT", "INCORRECT"] * 6
    assert {r.key for r in out} == {ln["key"] for ln in lines}


def test_torn_last_line_is_ignored_and_cut_off(serve, tmp_path, caplog):
    s = serve(grader)
    cache = tmp_path / "c.jsonl"
    data = rows(3)
    with client_for(s) as c:
        judge_rows(data[:2], c, cache, show_progress=False)
        whole = cache.read_bytes()
        cache.write_bytes(whole + whole.splitlines(keepends=True)[0][:25])  # a kill mid-write
        with caplog.at_level(logging.WARNING, logger="interp.judge"):
            assert len(load_cache(cache)) == 2
            out = judge_rows(data, c, cache, show_progress=False)
    assert "torn last line" in caplog.text
    assert s.n == 3 and [r.label for r in out] == ["CORRECT", "INCORRECT", "CORRECT"]
    lines = cache.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(ln) for ln in lines)


def test_a_locked_cache_is_refused(serve, tmp_path):
    from interp.judge import _open_cache

    s = serve(grader)
    cache = tmp_path / "c.jsonl"
    with client_for(s) as c, _open_cache(cache), pytest.raises(RuntimeError, match="locked"):
        judge_rows(rows(1), c, cache, show_progress=False)
    assert s.n == 0


def test_cache_survives_garbage_lines(tmp_path, caplog):
    cache = tmp_path / "c.jsonl"
    cache.write_text('not json\n{"key": "k", "label": "CORRECT", "reason": "r", "raw": "CORRECT", '
                     '"attempts": 1, "judge_model": "m", "prompt_version": "v"}\n\n')  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="interp.judge"):
        got = load_cache(cache)
    assert list(got) == ["k"] and "unreadable" in caplog.text
    assert load_cache(Path(tmp_path / "missing.jsonl")) == {}


def test_any_exception_of_one_row_is_recorded_not_raised(tmp_path):
    class Flaky:
        model = "fake-judge"
        max_workers = 2

        def complete(self, messages, *, temperature=0.0, max_tokens=None):
            if "explode" in messages[1]["content"]:
                raise ZeroDivisionError("boom")
            return "CORRECT"

    data = [
        JudgeRow("q", "Paris", "Lyon", r, "general_knowledge")
        for r in ("Paris", "explode", "Paris!")
    ]
    out = judge_rows(data, Flaky(), tmp_path / "c.jsonl", show_progress=False)
    assert [r.label for r in out] == ["CORRECT", "ERROR", "CORRECT"]
    assert "ZeroDivisionError" in out[1].reason


def test_retry_after_forms_and_content_parts(serve):
    from email.utils import formatdate

    from interp.llm_client import _content, _retry_after

    def resp(**headers):
        import httpx

        return httpx.Response(429, headers=headers)

    assert _retry_after(resp(**{"Retry-After": "2"})) == 2.0
    assert _retry_after(resp(**{"retry-after-ms": "150"})) == 0.15
    assert (
        0.0
        <= _retry_after(resp(**{"Retry-After": formatdate(time.time() + 3, usegmt=True)}))
        <= 3.5
    )
    assert _retry_after(resp(**{"Retry-After": "soon"})) is None
    assert _retry_after(resp()) is None
    parts = {
        "choices": [
            {
                "message": {
                    "content": [{"type": "text", "text": "COR"}, {"type": "text", "text": "RECT"}]
                }
            }
        ]
    }
    assert _content(parts) == "CORRECT"


def test_unknown_task_fails_before_any_request(serve, tmp_path):
    s = serve(grader)
    with client_for(s) as c, pytest.raises(ValueError, match="unknown task"):
        judge_rows(
            [JudgeRow("q", "a", "b", "r", "trivia")], c, tmp_path / "c.jsonl", show_progress=False
        )
    assert s.n == 0
