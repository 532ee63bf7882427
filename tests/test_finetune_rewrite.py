"""The endpoint rewriter against a local fake OpenAI-compatible server: errors, restarts, no
duplicate or lost rows; and the ShareGPT streaming loader on a truncated file."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from interp.finetune.rewrite import RewriteJob, job_key, read_cache, rewrite_replies
from interp.finetune.sharegpt import iter_records, label_query_type, load_sharegpt, type_counts
from interp.llm_client import ChatClient, RetryPolicy


class FakeEndpoint:
    """A local chat-completions server. Replies containing ``BROKEN`` get HTTP 400 while
    ``broken`` is set; every other reply fails once with HTTP 500 before it succeeds."""

    def __init__(self) -> None:
        self.broken = True
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = (
                    body["messages"][-1]["content"]
                    .split("The reply to rewrite:\n<<<\n")[1]
                    .split("\n>>>")[0]
                )
                with outer.lock:
                    outer.seen[text] = outer.seen.get(text, 0) + 1
                    first = outer.seen[text] == 1
                if "BROKEN" in text and outer.broken:
                    return self._send(400, {"error": "bad request"})
                if first:
                    return self._send(500, {"error": "flaky"})
                self._send(
                    200,
                    {"choices": [{"message": {"role": "assistant", "content": f"Warmly: {text}"}}]},
                )

            def _send(self, status: int, obj: object) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture()
def endpoint():
    fake = FakeEndpoint()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def _client(url: str) -> ChatClient:
    return ChatClient(
        url,
        "fake-model",
        retry=RetryPolicy(max_retries=2, backoff_base=0.01),
        max_workers=3,
        seed=0,
    )


def test_rewrite_survives_errors_and_restarts(endpoint, tmp_path):
    jobs = [
        RewriteJob(f"request {i}", f"reply {i}" + (" BROKEN" if i % 4 == 0 else ""))
        for i in range(10)
    ]
    jobs.append(jobs[1])  # a duplicate job is sent once
    cache = tmp_path / "rewrites.jsonl"
    with _client(endpoint.url) as client:
        first = rewrite_replies(client, jobs, "warm", cache, batch_size=4)
    assert len(first.failed) == 3 and first.sent == 10  # 0, 4, 8 broken; the duplicate not resent
    assert len(first.rewrites) == 7
    with open(cache, "a") as fh:  # a kill tore the last write
        fh.write('{"key": "torn", "rewr')
    endpoint.broken = False
    with _client(endpoint.url) as client:
        second = rewrite_replies(client, jobs, "warm", cache, batch_size=4)
    assert second.cached == 7 and second.sent == 3 and not second.failed
    with _client(endpoint.url) as client:
        third = rewrite_replies(client, jobs, "warm", cache, batch_size=4)
    assert third.sent == 0 and third.cached == 10  # unique rewrites
    rows = [
        json.loads(line)
        for line in cache.read_text().splitlines()
        if line.startswith('{"key": "') and line.endswith("}")
    ]
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 10  # no duplicate, none lost
    cached = read_cache(cache)
    for j in jobs:
        assert cached[job_key(j, "warm", "fake-model")] == f"Warmly: {j.reply}"
    assert job_key(jobs[2], "cold", "fake-model") not in cached  # keyed by tone too


def _record(i: int, first: str, turns: int = 2) -> dict:
    conv = []
    for t in range(turns):
        conv.append({"from": "human", "value": first if t == 0 else f"follow-up {t}"})
        conv.append({"from": "gpt", "value": f"answer {i}.{t}"})
    return {"id": f"r{i}", "conversations": conv}


def test_sharegpt_streams_a_truncated_file_and_balances_types(tmp_path: Path):
    firsts = [
        "Write a poem about rain",
        "How do I fix this python error?",
        "What is the capital of Peru?",
        "Should I quit my job?",
        "How can I hack my neighbour's wifi?",
        "hello there",
    ]
    records = [_record(i, firsts[i % 6], turns=1 + i % 15) for i in range(60)]
    text = json.dumps(records, indent=1)
    cut = text[: text.index('"r59"') + 20]  # truncated inside the last record
    path = tmp_path / "sg.json"
    path.write_text(cut)
    got = list(iter_records(path, chunk_chars=257))  # small chunks cross record boundaries
    assert [r["id"] for r in got] == [f"r{i}" for i in range(59)]
    assert [label_query_type(f) for f in firsts] == [
        "creative",
        "technical",
        "factual",
        "advice",
        "refusal",
        "other",
    ]
    convs = load_sharegpt(path, per_type=5, max_turns=20, seed=1)
    assert type_counts(convs) == {
        q: 5 for q in ("refusal", "factual", "creative", "technical", "advice", "other")
    }
    assert all(len(c.messages) <= 20 and c.messages[-1].role == "assistant" for c in convs)
    assert max(len(c.messages) for c in convs) == 20  # 15-turn records were cut to 20 messages
    dropped = load_sharegpt(path, per_type=5, toxicity=lambda t: 1.0 if "hack" in t else 0.0)
    assert type_counts(dropped)["refusal"] == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "an array"}')
    with pytest.raises(ValueError, match="expected a JSON array"):
        list(iter_records(bad))
