"""Activation cache: equals the backends' hidden states, batch-invariant, kill-safe, verified."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from interp.artifacts import ArtifactExistsError
from interp.cache import CacheError, CacheRow, CacheSpec, build_cache, open_cache
from interp.chat import as_messages, encode_chat
from interp.hooks import get_backend
from interp.sites import Site, sites

QUESTIONS = [
    "What is the capital of France?",
    "I'm feeling really sad today. Which planet is the largest?",
    "Who wrote Hamlet? I think the answer is Marlowe.",
    "Is the Earth flat?",
    "My brother, 21, has a fever. What should he do?",
    "Water boils at what temperature at sea level?",
    "Name a primary colour.",
]


def _rows(n=7):
    rows = []
    for i in range(n):
        q = QUESTIONS[i % len(QUESTIONS)] + (" Thanks!" * (i // len(QUESTIONS)))
        rows.append(CacheRow(f"r{i}", tuple(as_messages(q))))
    return rows


def test_cache_equals_hidden_states_of_each_prompt_alone(tiny_llama, tmp_path):
    backend = get_backend(tiny_llama, "torch")
    rows = _rows()
    spec = CacheSpec(
        sites=tuple(sites(["resid_post"], range(3))),
        positions=("last", "last:2", "mean_user"),
        batch_size=3,
        shard_rows=3,
    )
    cache = open_cache(build_cache(backend, rows, spec, tmp_path / "c", show_progress=False))
    assert cache.row_ids == [r.id for r in rows]
    for i, row in enumerate(rows):
        enc = encode_chat(tiny_llama.tokenizer, row.conversation)
        ids = torch.tensor([enc.input_ids])
        with torch.no_grad():
            hs = tiny_llama.hf_model(ids, output_hidden_states=True).hidden_states
        user = enc.span_of("user")
        for layer in range(2):  # the last layer's HF entry is normed; resid_post is not
            h = hs[layer + 1][0]
            torch.testing.assert_close(
                cache.load(Site(layer, "resid_post"), "last")[i, 0], h[-1], atol=1e-5, rtol=0
            )
            torch.testing.assert_close(
                cache.load(Site(layer, "resid_post"), "last:2")[i], h[-2:], atol=1e-5, rtol=0
            )
            torch.testing.assert_close(
                cache.load(Site(layer, "resid_post"), "mean_user")[i, 0],
                h[user.tok_start : user.tok_end].mean(0),
                atol=1e-5,
                rtol=0,
            )


def test_every_token_rows_come_back_in_row_order_though_batched_by_length(tiny_llama, tmp_path):
    # rows of mixed lengths in batches of 3: the cache batches them by length and must still
    # store every row's tokens in row order, each equal to that row's own forward
    backend = get_backend(tiny_llama, "torch")
    rows = _rows()
    lengths = [len(encode_chat(tiny_llama.tokenizer, r.conversation).input_ids) for r in rows]
    assert sorted(lengths) != lengths  # the length order differs from the row order
    spec = CacheSpec(
        sites=(Site(1, "resid_post"),),
        positions=("every_token", "last"),
        batch_size=3,
        shard_rows=6,
    )
    cache = open_cache(build_cache(backend, rows, spec, tmp_path / "c", show_progress=False))
    index = cache.token_index()
    acts = cache.load(Site(1, "resid_post"), "every_token")
    last = cache.load(Site(1, "resid_post"), "last")
    assert index["row"].tolist() == sorted(index["row"].tolist())
    for i, row in enumerate(rows):
        enc = encode_chat(tiny_llama.tokenizer, row.conversation)
        with torch.no_grad():
            h = tiny_llama.hf_model(torch.tensor([enc.input_ids]), output_hidden_states=True)
        mine = index["row"] == i
        pos = index["pos"][mine]
        assert index["token_ids"][mine].tolist() == [enc.input_ids[p] for p in pos.tolist()]
        torch.testing.assert_close(acts[mine], h.hidden_states[2][0, pos], atol=1e-5, rtol=0)
        torch.testing.assert_close(last[i, 0], h.hidden_states[2][0, -1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("side", ["left", "right"])
def test_batched_equals_unbatched_with_padding(tiny_llama, tmp_path, side):
    backend = get_backend(tiny_llama, "torch")
    rows = _rows()
    site_list = tuple(
        sites(["resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post"], range(3))
    )
    one = CacheSpec(
        sites=site_list,
        positions=("last", "mean_user"),
        batch_size=1,
        shard_rows=7,
        padding_side=side,
    )
    many = CacheSpec(
        sites=site_list,
        positions=("last", "mean_user"),
        batch_size=7,
        shard_rows=7,
        padding_side=side,
    )
    a = open_cache(build_cache(backend, rows, one, tmp_path / "one", show_progress=False))
    b = open_cache(build_cache(backend, rows, many, tmp_path / "many", show_progress=False))
    for key_site in site_list:
        for pos in ("last", "mean_user"):
            torch.testing.assert_close(
                a.load(key_site, pos), b.load(key_site, pos), atol=1e-5, rtol=0
            )


def test_early_stop_and_backends_give_the_same_cache(tiny_llama, tmp_path):
    rows = _rows()
    base = dict(
        sites=(Site(0, "resid_post"), Site(1, "mlp_out")),
        positions=("last",),
        batch_size=7,
        shard_rows=7,
    )
    caches = {}
    for name in ("torch", "nnsight", "transformerlens"):
        for stop in (True, False):
            spec = CacheSpec(**base, stop_early=stop)  # type: ignore[arg-type]
            caches[(name, stop)] = open_cache(
                build_cache(
                    get_backend(tiny_llama, name),
                    rows,
                    spec,
                    tmp_path / f"{name}-{stop}",
                    show_progress=False,
                )
            )
    ref = caches[("torch", False)]
    for cache in caches.values():
        for s in base["sites"]:  # type: ignore[union-attr]
            torch.testing.assert_close(cache.load(s), ref.load(s), atol=1e-5, rtol=0)


def test_refuses_a_folder_with_another_request_and_detects_corruption(tiny_llama, tmp_path):
    backend = get_backend(tiny_llama, "torch")
    spec = CacheSpec(sites=(Site(1, "resid_post"),), batch_size=2, shard_rows=2)
    folder = build_cache(backend, _rows(), spec, tmp_path / "c", show_progress=False)
    other = CacheSpec(sites=(Site(2, "resid_post"),), batch_size=2, shard_rows=2)
    with pytest.raises(ArtifactExistsError, match="different request"):
        build_cache(backend, _rows(), other, folder, show_progress=False)
    shard = folder / "shard-00001.safetensors"
    good = shard.read_bytes()
    shard.write_bytes(good[:-8] + b"\x00" * 8)
    with pytest.raises(CacheError, match="checksum"):
        open_cache(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["status"] = "in_progress"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    # what a run killed while writing a shard or the manifest leaves behind
    stale = [folder / ".shard-00001.safetensors.tmp", folder / ".manifest.json.0a1b.tmp"]
    for f in stale:
        f.write_bytes(b"partial")
    build_cache(backend, _rows(), spec, folder, show_progress=False)  # repairs the corrupt shard
    assert shard.read_bytes() == good
    assert not any(f.exists() for f in stale)
    open_cache(folder)


def test_spec_validation():
    with pytest.raises(ValueError, match="multiple of batch_size"):
        CacheSpec(sites=(Site(0, "resid_post"),), batch_size=3, shard_rows=4)
    with pytest.raises(ValueError, match="unknown position"):
        CacheSpec(sites=(Site(0, "resid_post"),), positions=("middle",))


SCRIPT = textwrap.dedent(
    """
    import sys, time, torch
    from interp.cache import CacheRow, CacheSpec, build_cache
    from interp.chat import as_messages
    from interp.hooks import get_backend
    from interp.sites import Site
    from interp.tiny_models import tiny_model

    torch.set_num_threads(1)
    out, slow = sys.argv[1], sys.argv[2] == "slow"
    loaded = tiny_model("llama", n_layers=3)
    backend = get_backend(loaded, "torch")
    rows = [
        CacheRow(f"r{i}", tuple(as_messages(f"Question number {i}: is {i} a prime number?")))
        for i in range(24)
    ]
    spec = CacheSpec(
        sites=(Site(0, "resid_post"), Site(2, "resid_mid")),
        positions=("last", "mean_user"),
        batch_size=2,
        shard_rows=2,
    )
    if slow:  # make the run long enough to be killed in the middle
        orig = backend.forward_for_reads
        def forward(ids, mask):
            time.sleep(0.15)
            return orig(ids, mask)
        backend.forward_for_reads = forward
    build_cache(backend, rows, spec, out, show_progress=False)
    """
)


def test_resume_after_sigkill_gives_bit_identical_files(tmp_path):
    script = tmp_path / "run_cache.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(
        [sys.executable, str(script), str(full), "fast"], check=True, env=env, timeout=300
    )
    proc = subprocess.Popen([sys.executable, str(script), str(killed), "slow"], env=env)
    deadline = time.time() + 240
    while time.time() < deadline:
        manifest = killed / "manifest.json"
        if manifest.is_file() and len(json.loads(manifest.read_text())["shards"]) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = json.loads((killed / "manifest.json").read_text())
    assert partial["status"] == "in_progress" and 3 <= len(partial["shards"]) < 12
    subprocess.run(
        [sys.executable, str(script), str(killed), "fast"], check=True, env=env, timeout=300
    )
    names = sorted(p.name for p in full.glob("shard-*.safetensors"))
    assert names == sorted(p.name for p in killed.glob("shard-*.safetensors")) and len(names) == 12
    for name in names:
        assert (full / name).read_bytes() == (killed / name).read_bytes(), name
    assert not list(killed.glob(".*.tmp"))
    assert open_cache(Path(killed)).load(Site(2, "resid_mid"), "mean_user").shape == (24, 1, 64)


def test_a_second_builder_of_the_same_cache_waits_then_reuses_it(tiny_llama, tmp_path):
    """Two study steps at once may ask for one cache: the second waits for the first's lock
    (interp.cache.building), then finds the cache complete and computes nothing (unlocked, both
    would compute every shard and write it through the same temporary name)."""
    import threading
    from unittest import mock

    import interp.cache as cache_module

    backend = get_backend(tiny_llama, "torch")
    spec = CacheSpec(sites=(Site(1, "resid_post"),), positions=("last",))
    out = tmp_path / "c"
    computed: list[int] = []
    real = cache_module.compute_rows

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        computed.append(1)
        time.sleep(0.3)  # long enough for the other builder to arrive meanwhile
        return real(*args, **kwargs)

    errors: list[BaseException] = []

    def build() -> None:
        try:
            build_cache(backend, _rows(3), spec, out, show_progress=False)
        except BaseException as exc:  # a thread's error would otherwise only warn
            errors.append(exc)

    with mock.patch.object(cache_module, "compute_rows", slow):
        threads = [threading.Thread(target=build) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors and len(computed) == 1  # one shard, computed once
    assert open_cache(out).load(Site(1, "resid_post")).shape[0] == 3
