"""A training run killed with SIGKILL and started again ends with exactly the weights of an
uninterrupted run (tiny model, real subprocess); checkpoints load by run name."""

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
from safetensors.torch import load_file

from interp.config import ConfigError

SCRIPT = textwrap.dedent(
    """
    import sys, time, torch
    from pathlib import Path
    torch.set_num_threads(1)
    from interp.chat import Message
    from interp.finetune.examples import TrainingConversation, tokenize_all
    from interp.finetune.train import TrainConfig, train
    from interp.tiny_models import tiny_model

    run_dir, delay = Path(sys.argv[1]), float(sys.argv[2])
    loaded = tiny_model("llama", n_layers=2, d_model=32, d_mlp=64)
    words = ["Paris", "London", "blue", "seven", "happy", "rain", "tea", "cat"]
    convs = [TrainingConversation(f"c{i}", (Message("user", f"Tell me about {w}?"),
             Message("assistant", f"I'm so glad you asked about {w}! It is lovely.")))
             for i, w in enumerate(words)]
    examples = tokenize_all(loaded.tokenizer, convs, 128)
    config = TrainConfig(learning_rate=1e-2, effective_batch=4, micro_batch=3, epochs=4.0,
                         checkpoint_epochs=(1.0, 2.0, 3.0), lora_dropout=0.1, seed=5)
    _, result = train(loaded, examples, config, run_dir, meta={"variant": "warm"},
                      on_step=lambda s, n, loss: time.sleep(delay))
    print("RESUMED", result.resumed_from_step, flush=True)
    """
)


def _run(script: Path, run_dir: Path, delay: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(run_dir), str(delay)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _final_weights(run_dir: Path) -> dict:
    return load_file(str(run_dir / "checkpoints" / "epoch-4.0" / "adapter_model.safetensors"))


def test_killed_run_resumes_to_identical_weights(tmp_path):
    script = tmp_path / "train_tiny.py"
    script.write_text(SCRIPT)
    ref_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    ref = _run(script, ref_dir, 0.0)
    out, _ = ref.communicate(timeout=240)
    assert ref.returncode == 0, out
    assert "RESUMED 0" in out

    proc = _run(script, killed_dir, 0.5)
    first = killed_dir / "checkpoints" / "epoch-1.0" / "meta.json"
    deadline = time.monotonic() + 240
    while not first.is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert first.is_file(), "the first checkpoint never appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed_dir / "checkpoints" / "epoch-4.0").exists(), "run finished before the kill"

    again = _run(script, killed_dir, 0.0)
    out, _ = again.communicate(timeout=240)
    assert again.returncode == 0, out
    resumed = int(out.split("RESUMED")[1].split()[0])
    assert 2 <= resumed < 8, out  # continued from a checkpoint, not from scratch
    a, b = _final_weights(ref_dir), _final_weights(killed_dir)
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert a[k].equal(b[k]), f"{k} differs after resume"
    meta = json.loads((killed_dir / "checkpoints" / "epoch-4.0" / "meta.json").read_text())
    assert meta["step"] == 8 and meta["epoch"] == 4.0 and meta["variant"] == "warm"
    assert "base_weights_hash" in meta and "train_config" in meta


def test_resume_refuses_a_different_config(tmp_path, fresh_tiny_llama):
    from interp.finetune.train import check_run_config

    check_run_config(tmp_path, {"train_config": {"lr": 1}, "variant": "warm"})
    check_run_config(tmp_path, {"train_config": {"lr": 1}, "variant": "warm"})
    with pytest.raises(ConfigError, match="variant"):
        check_run_config(tmp_path, {"train_config": {"lr": 1}, "variant": "cold"})


def test_adapter_names_resolve_to_run_checkpoints(tmp_path, monkeypatch):
    from interp.models import ModelLoadError, adapter_folder

    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path))
    run = tmp_path / "finetune" / "embedded-warm"
    for e in ("epoch-1.0", "epoch-2.0"):
        (run / "checkpoints" / e).mkdir(parents=True)
        (run / "checkpoints" / e / "adapter_config.json").write_text("{}")
    assert adapter_folder("embedded-warm@1.0") == run / "checkpoints" / "epoch-1.0"
    assert adapter_folder("embedded-warm@1") == run / "checkpoints" / "epoch-1.0"
    with pytest.raises(
        ModelLoadError, match=r"not finished.*embedded-warm@1\.0, embedded-warm@2\.0"
    ):
        adapter_folder("embedded-warm")
    (run / "meta.json").write_text(json.dumps({"final_checkpoint": "epoch-2.0"}))
    assert adapter_folder("embedded-warm") == run / "checkpoints" / "epoch-2.0"
    with pytest.raises(ModelLoadError, match=r"no checkpoint at epoch 3.*embedded-warm@2\.0"):
        adapter_folder("embedded-warm@3")
    with pytest.raises(ModelLoadError, match="runs there: embedded-warm"):
        adapter_folder("embedded-cold")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "adapter_config.json").write_text("{}")
    assert adapter_folder(str(plain)) == plain
    with pytest.raises(ModelLoadError, match=r"no adapter_config\.json"):
        adapter_folder(str(tmp_path / "finetune"))


class _Payload:
    """A pickle that would run code when unpickled without weights_only."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_tampered_resume_state_is_refused_and_never_executed(tmp_path, monkeypatch):
    import pickle

    import torch

    from interp.finetune.train import (
        LEGACY_RESUME_FILE,
        RESUME_JSON,
        RESUME_TENSORS,
        ResumeStateError,
        read_resume_state,
        write_resume_state,
    )

    monkeypatch.chdir(tmp_path)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=0.1)
    opt.param_groups[0]["params"][0].grad = torch.ones(3)
    opt.step()
    good = tmp_path / "good"
    good.mkdir()
    state = {
        "optimizer": opt.state_dict(),
        "scheduler": {"last_epoch": 1, "lambdas": [None]},
        "rng": {"torch": torch.random.get_rng_state()},
        "step": 1,
    }
    write_resume_state(good, state)
    back = read_resume_state(good)
    assert (
        back["step"] == 1
        and back["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    )
    assert torch.equal(
        back["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"]
    )
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"])

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    torch.save({"optimizer": {}, "scheduler": {}, "rng": _Payload()}, legacy / LEGACY_RESUME_FILE)
    with pytest.raises(ResumeStateError, match="refused"):
        read_resume_state(legacy)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / RESUME_TENSORS).write_bytes(pickle.dumps(_Payload()))
    (raw / RESUME_JSON).write_text(json.dumps({"format": "interp-resume-v1", "state": {}}))
    with pytest.raises(ResumeStateError, match="unreadable"):
        read_resume_state(raw)
    assert not (tmp_path / "PWNED").exists()
