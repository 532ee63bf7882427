"""The evaluation, direction, probe, trajectory, cache and generate commands take the one
LoadOptions definition and hand every field of it to the model loader."""

from __future__ import annotations

import pytest
from rich.console import Console

from interp.models import LoadOptions
from interp.tiny_models import tiny_model_folder

WANTED = {"dtype": "bfloat16", "device": "cuda:1", "device_map": "auto", "load_in_4bit": True}


class Loaded(Exception):
    """Raised by the fake loader once it has seen the options (nothing loads)."""


@pytest.fixture
def captured(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path))
    seen: dict[str, object] = {}

    def fake_load(name, **kwargs):
        seen.update(kwargs)
        raise Loaded(name)

    import interp.commands.basic
    import interp.commands.cache
    import interp.commands.evaluate
    import interp.definitions.activations

    for module in (
        interp.commands.basic,
        interp.commands.cache,
        interp.commands.evaluate,
        interp.definitions.activations,
    ):
        monkeypatch.setattr(module, "load_model", fake_load)
    return seen


def _check(seen: dict[str, object]) -> None:
    assert {k: seen[k] for k in WANTED} == WANTED


def test_every_model_loading_config_is_load_options():
    from interp.commands.basic import GenerateConfig
    from interp.commands.cache import CacheConfig
    from interp.commands.directions import DirectionsConfig
    from interp.commands.evaluate import EvalConfig
    from interp.commands.probes import ProbesConfig
    from interp.commands.trajectory import TrajectoryConfig

    for cls in (
        GenerateConfig,
        CacheConfig,
        DirectionsConfig,
        EvalConfig,
        ProbesConfig,
        TrajectoryConfig,
    ):
        assert issubclass(cls, LoadOptions), cls.__name__
    assert EvalConfig().load_kwargs() == LoadOptions().load_kwargs()  # defaults: CPU, float32


def test_eval_generate_and_cache_pass_every_load_option(captured):
    from interp.commands.basic import GenerateConfig, run_generate
    from interp.commands.cache import CacheConfig, run_cache
    from interp.commands.evaluate import EvalConfig, run_eval

    model = tiny_model_folder()
    for run, config in (
        (run_eval, EvalConfig(model=model, per_task=1, **WANTED)),  # type: ignore[arg-type]
        (run_generate, GenerateConfig("hello", model=model, **WANTED)),  # type: ignore[arg-type]
        (run_cache, CacheConfig(model=model, per_task=1, **WANTED)),  # type: ignore[arg-type]
    ):
        captured.clear()
        with pytest.raises(Loaded):
            run(config, Console(quiet=True))
        _check(captured)


def test_directions_and_trajectory_pass_every_load_option(captured):
    from interp.commands.directions import DirectionsConfig
    from interp.commands.trajectory import TrajectoryConfig, _activations

    model = tiny_model_folder()
    source = DirectionsConfig(model=model, **WANTED).source()  # type: ignore[arg-type]
    with pytest.raises(Loaded):
        source.backend("base")
    _check(captured)
    captured.clear()
    config = TrajectoryConfig(run="x", model=model, per_task=2, **WANTED)  # type: ignore[arg-type]
    with pytest.raises(Loaded):
        _activations(config, [], Console(quiet=True))
    _check(captured)
