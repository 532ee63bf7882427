"""Benchmark: time from typing the command to the first answer, for the live demo.

Baseline: `interp generate "<the first preset's prompt>" --max-new-tokens N` (load the model, one
greedy reply, printed when complete), timed from launch to exit. Ours: `interp demo --port P`
launched the same way, then the page's first request (the first preset at its default settings)
timed from launch to the server answering, to the first streamed token and to all three answers
(original, steered, ablated) complete. The demo runs twice with the same artifacts folder: cold
(no study direction, so the persona direction is derived at start-up) and warm (read back from
its cache). Everything runs in fresh processes in the same run. Prints one BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/demo_first_answer.py [--max-new-tokens 48]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)

INTERP = [sys.executable, "-m", "interp.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, proc: subprocess.Popen, limit: float = 600) -> None:
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"interp demo exited early with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("the demo did not come up")


def get_json(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    return json.loads(conn.getresponse().read())


def first_request(config: dict) -> str:
    preset, direction = config["presets"][0], config["directions"][0]
    return "/api/run?" + urlencode(
        {
            "client": "bench",
            "item": preset["item_id"],
            "wrong": preset["wrong"],
            "sad": int(preset["sad"]),
            "belief": int(preset["belief"]),
            "direction": direction["key"],
            "layer": direction["default_layer"],
            "alpha": 0,
        }
    )


def time_demo(env: dict[str, str], max_new_tokens: int) -> dict[str, float]:
    """Seconds from launch to: server up, first streamed token, all three answers done."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*INTERP, "demo", "--port", str(port), "--max-new-tokens", str(max_new_tokens)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_up(port, proc)
        up = time.perf_counter() - t0
        config = get_json(port, "/api/config")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("GET", first_request(config))
        resp = conn.getresponse()
        first = done = float("nan")
        while line := resp.fp.readline():
            if not line.startswith(b"data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "tokens" and first != first:
                first = time.perf_counter() - t0
            if event["type"] in ("done", "invalid", "error", "cancelled"):
                if event["type"] != "done":
                    raise RuntimeError(f"demo run failed: {event}")
                done = time.perf_counter() - t0
                break
        return {"up": up, "first_token": first, "done": done}
    finally:
        proc.terminate()
        proc.wait(30)


def time_generate(env: dict[str, str], prompt: str, max_new_tokens: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [*INTERP, "generate", prompt, "--max-new-tokens", str(max_new_tokens)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()

    from interp.data.contexts import load_contexts
    from interp.data.items import load_embedded_items
    from interp.demo.inputs import DemoRequest, build_prompt
    from interp.demo.presets import PRESETS

    items = {i.id: i for i in load_embedded_items()}
    preset = PRESETS[0]
    prompt = build_prompt(
        DemoRequest(
            item_id=preset.item_id, wrong=preset.wrong, sad=preset.sad, belief=preset.belief
        ),
        items,
        load_contexts(),
    ).user
    with tempfile.TemporaryDirectory() as artifacts:
        env = {**os.environ, "INTERP_ARTIFACTS": artifacts}
        base = time_generate(env, prompt, args.max_new_tokens)
        cold = time_demo(env, args.max_new_tokens)
        warm = time_demo(env, args.max_new_tokens)
        assert any(Path(artifacts, "demo").glob("persona-*")), (
            "the cold start did not cache its direction"
        )
    device = f"CPU ({os.cpu_count()} cores, {platform.machine()}; load {os.getloadavg()[0]:.1f})"
    print(
        markdown_row(
            [
                f"demo: command to first answer, embedded model, {args.max_new_tokens} tokens "
                "(s, lower is better)",
                "`.venv/bin/python benchmarks/demo_first_answer.py --max-new-tokens "
                f"{args.max_new_tokens}`",
                f"{base:.1f} s (`interp generate`, one reply, shown when complete)",
                f"warm: first token {warm['first_token']:.1f} s, three answers {warm['done']:.1f} "
                "s "
                f"(server up {warm['up']:.1f} s); cold (persona derived): first token "
                f"{cold['first_token']:.1f} s, three answers {cold['done']:.1f} s",
                f"{base / warm['first_token']:.2f}x to first token",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
