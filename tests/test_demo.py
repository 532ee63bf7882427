"""The demo's inputs, session and terminal table on a tiny random model (fast)."""

from __future__ import annotations

import threading

import pytest
import torch

from interp.chat import Message
from interp.config import ConfigError
from interp.data.build import prompt_list
from interp.demo import (
    VARIANTS,
    DemoInputError,
    DemoRequest,
    DemoSession,
    build_prompt,
    collect,
    request_from_params,
    rowwise_edits,
)
from interp.demo.catalog import CatalogEntry, build_catalog, demo_persona_direction, direction_runs
from interp.demo.presets import PRESETS
from interp.directions import Direction
from interp.generate import SamplingConfig, generate_replies
from interp.hooks import get_backend
from interp.scoring import ChoicePrompt, score_choices
from interp.sites import Site
from interp.steer import Intervention, edits_for, steered
from interp.tiny_models import tiny_model


@pytest.fixture(scope="module")
def lively():
    """A tiny Llama whose weights are scaled up so greedy decoding varies (a random init at
    the default scale always answers with the same token)."""
    loaded = tiny_model("llama", n_layers=3)
    with torch.no_grad():
        for name, p in loaded.hf_model.named_parameters():
            if "norm" not in name:
                p.mul_(8.0)
    return get_backend(loaded, "torch")


def random_direction(
    d_model: int, layers=(0, 1, 2), seed: int = 0, name: str = "persona"
) -> Direction:
    g = torch.Generator().manual_seed(seed)
    return Direction(
        name,
        "mean_diff",
        "resid_post",
        "mean_assistant",
        tuple(layers),
        torch.randn(len(layers), d_model, generator=g),
    )


@pytest.fixture(scope="module")
def session(lively):
    entry = CatalogEntry("persona-mean_diff", random_direction(lively.loaded.d_model), "test")
    return DemoSession(lively, [entry], max_new_tokens=10, alpha_limit=2.0)


def request(**kw) -> DemoRequest:
    base = {
        "item_id": "gk-001",
        "wrong": "London",
        "sad": True,
        "belief": True,
        "direction": "persona-mean_diff",
        "layer": 1,
        "alpha": 1.5,
    }
    return DemoRequest(**{**base, **kw})


# ---------------------------------------------------------------- inputs


def test_params_parse_and_name_the_bad_field():
    req = request_from_params(
        {
            "item": "gk-001",
            "sad": "1",
            "belief": "0",
            "direction": "d",
            "layer": "3",
            "alpha": "-0.25",
        }
    )
    assert (req.item_id, req.sad, req.belief, req.layer, req.alpha) == (
        "gk-001",
        True,
        False,
        3,
        -0.25,
    )
    for params, field in [
        ({"layer": "1", "alpha": "abc"}, "alpha"),
        ({"layer": "x", "alpha": "0"}, "layer"),
        ({"layer": "1", "alpha": "nan"}, "alpha"),
        ({"layer": "1"}, "alpha"),
        ({"layer": "1", "alpha": "0", "sad": "maybe"}, "sad"),
    ]:
        with pytest.raises(DemoInputError) as err:
            request_from_params(params)
        assert err.value.field == field


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"item_id": None, "question": "   "}, "question"),
        ({"alpha": 2.5}, "alpha"),
        ({"alpha": -2.01}, "alpha"),
        ({"direction": "nope"}, "direction"),
        ({"layer": 7}, "layer"),
        ({"item_id": None, "question": "Is it?", "wrong": None}, "wrong"),
        ({"item_id": None, "question": "Is it?", "correct": "Yes", "wrong": "yes"}, "wrong"),
        ({"wrong": "Paris"}, "wrong"),
        ({"item_id": "zz-404"}, "item"),
    ],
)
def test_invalid_controls_are_named(session, kw, field):
    with pytest.raises(DemoInputError) as err:
        session.run(request(**kw))
    assert err.value.field == field


def test_prompt_is_the_study_prompt(session):
    """Sad + belief on an item renders exactly the evaluation's prompt (same statement, wording)."""
    prompts, _ = prompt_list(
        tasks=("general_knowledge",),
        conditions=("emotion:sad", "unmodified"),
        templates=("incorrect", "no_belief"),
        per_task=2,
    )
    by_id = {p.prompt_id: p for p in prompts}
    for sad, belief in [(True, True), (False, False), (True, False), (False, True)]:
        built = build_prompt(
            request(wrong=None, sad=sad, belief=belief), session.items, session.contexts
        )
        pid = (
            f"gk-001/{'emotion:sad' if sad else 'unmodified'}/"
            f"{'incorrect' if belief else 'no_belief'}"
        )
        assert built.user == by_id[pid].user
        assert built.candidates == (by_id[pid].correct, by_id[pid].incorrect)
    london = build_prompt(request(), session.items, session.contexts)
    assert london.user.endswith("I think the answer is London.") and london.candidates == (
        "Paris",
        "London",
    )


def test_typed_question_without_answers_has_no_choice(session):
    built = build_prompt(
        request(item_id=None, question="Why is the sky blue?", wrong=None, belief=False, sad=False),
        session.items,
        session.contexts,
    )
    assert built.user == "Why is the sky blue?" and built.candidates is None
    result = collect(
        session.run(
            request(item_id=None, question="Why is the sky blue?", wrong=None, belief=False)
        )
    )
    assert all(result.p_agree[v] is None for v in VARIANTS) and set(result.texts) == set(VARIANTS)


def test_presets_name_real_items(session):
    assert PRESETS and all(p.item_id in session.items for p in PRESETS)
    assert [p.item_id for p in session.presets] == [p.item_id for p in PRESETS]


# ---------------------------------------------------------------- computation


def test_rowwise_edits_equal_separate_edits():
    x = torch.randn(3, 5, 8)
    plus = {Site(1, "resid_post"): lambda t, s: t + 1.0}
    times = {
        Site(1, "resid_post"): lambda t, s: t * 2.0,
        Site(2, "resid_post"): lambda t, s: t - 3.0,
    }
    edits = rowwise_edits([{}, plus, times])
    y = edits[Site(1, "resid_post")](x.clone(), Site(1, "resid_post"))
    torch.testing.assert_close(y, torch.stack([x[0], x[1] + 1.0, x[2] * 2.0]))
    z = edits[Site(2, "resid_post")](x.clone(), Site(2, "resid_post"))
    torch.testing.assert_close(z, torch.stack([x[0], x[1], x[2] - 3.0]))
    with pytest.raises(ValueError, match="expects 3 rows"):
        edits[Site(1, "resid_post")](x[:2], Site(1, "resid_post"))


def test_run_matches_the_library_computed_directly(session, lively):
    """Streamed batched answers, p(wrong) and projections equal the per-variant library calls."""
    req = request()
    events = list(session.run(req))
    kinds = [e["type"] for e in events]
    assert kinds[:4] == ["meta", "score", "score", "score"] and kinds[-1] == "done"
    result = collect(iter(events))
    built = session.check(req)
    site = Site(req.layer, "resid_post")
    unit = session.directions[req.direction].direction.unit(req.layer)
    for variant, ivs in session.interventions(req).items():
        with steered(lively, ivs, session.norms):
            direct = generate_replies(
                lively, [built.conversation], SamplingConfig(max_new_tokens=10, temperature=0)
            )[0]
        with steered(lively, ivs, session.norms):
            p = score_choices(
                lively, [ChoicePrompt(built.conversation, built.candidates)]
            ).choice_probs()[0, 1]
        assert result.texts[variant] == direct, variant
        assert result.p_agree[variant] == pytest.approx(float(p), abs=1e-6)
    streamed = ["".join(e["deltas"][i] for e in events if e["type"] == "tokens") for i in range(3)]
    assert any(t.strip() for t in streamed)
    # the steered row adds alpha * norm along the unit at the read site; the ablated row has none
    assert result.projection["steered"] - result.projection["original"] == pytest.approx(
        req.alpha * session.norms[req.layer], rel=1e-4
    )
    assert abs(result.projection["ablated"]) < 1e-4
    assert result.projection_rel["steered"] == pytest.approx(
        result.projection["steered"] / session.norms[req.layer]
    )
    assert float(unit.norm()) == pytest.approx(1.0)
    assert site.layer == 1


def test_steering_changes_the_answer_and_zero_alpha_does_not(session):
    strong = collect(session.run(request(alpha=2.0)))
    zero = collect(session.run(request(alpha=0.0)))
    assert zero.texts["steered"] == zero.texts["original"]
    assert zero.p_agree["steered"] == pytest.approx(zero.p_agree["original"], abs=1e-7)
    assert strong.p_agree["steered"] != pytest.approx(strong.p_agree["original"], abs=1e-4)


def test_cancel_stops_between_steps_and_frees_the_model(session):
    cancel = threading.Event()
    events = session.run(request(), cancel)
    seen = []
    for ev in events:
        seen.append(ev["type"])
        if seen.count("tokens") == 2:
            cancel.set()
    assert seen[-1] == "cancelled" and seen.count("tokens") == 2 and "done" not in seen
    early = threading.Event()
    early.set()
    assert [e["type"] for e in session.run(request(), early)] == ["meta", "cancelled"]
    assert collect(session.run(request(alpha=0.5))).texts  # the lock was released


def test_a_stalled_run_never_blocks_the_next(session):
    """A run whose reader stalls (a slow browser) holds no lock between steps."""
    stalled = session.run(request(alpha=0.5))
    assert [next(stalled)["type"] for _ in range(5)][-1] == "tokens"
    done = {}
    thread = threading.Thread(
        target=lambda: done.update(r=collect(session.run(request(alpha=1.0))))
    )
    thread.start()
    thread.join(60)
    assert "r" in done and done["r"].texts
    assert [e["type"] for e in stalled][-1] == "done"


def test_concurrent_runs_share_the_model_safely(session):
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def work(i: int, alpha: float) -> None:
        try:
            results[i] = collect(session.run(request(alpha=alpha)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, a)) for i, a in enumerate((0.5, 1.0, 0.5))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 3
    assert results[0].texts == results[2].texts  # type: ignore[attr-defined]
    assert results[0].p_agree == results[2].p_agree  # type: ignore[attr-defined]


def test_session_refuses_a_backend_without_cache_and_no_directions(lively):
    with pytest.raises(ConfigError, match="at least one direction"):
        DemoSession(lively, [])


# ---------------------------------------------------------------- directions


def test_catalog_lists_fitting_folders_newest_first(tmp_path, lively):
    import os

    d_model = lively.loaded.d_model
    old = random_direction(d_model, seed=1).save(
        tmp_path / "directions" / "run-old" / "persona-mean_diff"
    )
    new = random_direction(d_model, seed=2).save(
        tmp_path / "directions" / "run-new" / "persona-mean_diff"
    )
    random_direction(d_model + 1, name="wide").save(
        tmp_path / "directions" / "run-new" / "wide-mean_diff"
    )
    os.utime(tmp_path / "directions" / "run-old", (1, 1))
    entries = build_catalog([], direction_runs(tmp_path), d_model, 3)
    assert [e.key for e in entries] == ["persona-mean_diff", "persona-mean_diff@run-old"]
    assert entries[0].source == str(new) and entries[1].source == str(old)
    explicit = build_catalog([old], [], d_model, 3)
    assert [e.source for e in explicit] == [str(old)]
    with pytest.raises(ConfigError, match="does not fit"):
        build_catalog([tmp_path / "directions" / "run-new" / "wide-mean_diff"], [], d_model, 3)
    with pytest.raises(ConfigError, match="no Direction folder"):
        build_catalog([tmp_path], [], d_model, 3)
    assert direction_runs(tmp_path / "missing") == []


def test_catalog_finds_the_newest_finished_study_directions(tmp_path, lively):
    """After `bash scripts/study.sh` the directions live in <artifacts>/study/<preset>/
    08-directions-<hash>/; the demo offers that run's finetune, persona and sycophancy first."""
    import json
    import os

    d_model = lively.loaded.d_model
    study = tmp_path / "study" / "embedded"
    done = study / "08-directions-abc123"
    for i, name in enumerate(("sad_context", "sycophancy", "persona", "finetune")):
        random_direction(d_model, seed=i, name=name).save(done / name)
    (done / "meta.json").write_text(json.dumps({"stage": "directions"}))
    older = study / "08-directions-old000"
    random_direction(d_model, seed=9, name="finetune").save(older / "finetune")
    (older / "meta.json").write_text("{}")
    os.utime(older / "meta.json", (1, 1))
    unfinished = tmp_path / "study" / "tiny" / "08-directions-fff000"  # no meta.json yet
    random_direction(d_model, seed=8, name="finetune").save(unfinished / "finetune")
    assert direction_runs(tmp_path) == [done]
    entries = build_catalog([], direction_runs(tmp_path), d_model, 3)
    assert [e.key for e in entries] == [
        "finetune-mean_diff",
        "persona-mean_diff",
        "sycophancy-mean_diff",
        "sad_context-mean_diff",
    ]
    assert all(e.source.startswith(str(done)) for e in entries)
    # a run folder given by path is expanded too
    assert len(build_catalog([done], [], d_model, 3)) == 4


def test_persona_direction_is_derived_once_and_cached(tmp_path, monkeypatch, tiny_llama):
    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path))
    backend = get_backend(tiny_llama, "torch")
    first, folder = demo_persona_direction(backend, n_triples=4)
    assert first.layers == (0, 1, 2) and first.name == "persona" and folder.parent.name == "demo"
    assert len(first.sources["triples"].split(",")) == 4
    second, again = demo_persona_direction(backend, n_triples=4)
    assert again == folder
    torch.testing.assert_close(first.vectors, second.vectors)
    # it is the difference of warm and neutral means over the assistant tokens
    from interp.cache import open_cache

    cache = open_cache(next(tmp_path.joinpath("demo").glob("persona-cache-*")))
    acts = cache.load(Site(2, "resid_post"), "mean_assistant")[:, 0]
    warm = torch.tensor([i.endswith("/warm") for i in cache.row_ids])
    assert int(warm.sum()) == 4
    torch.testing.assert_close(
        first.at(2), acts[warm].double().mean(0).sub(acts[~warm].double().mean(0)).float()
    )


# ---------------------------------------------------------------- terminal


def test_tui_table_shows_the_three_columns(session):
    from rich.console import Console

    from interp.demo.tui import show_run

    console = Console(record=True, width=400, force_terminal=False)
    result = show_run(session.run(request(alpha=1.0)), console)
    out = console.export_text()
    assert "p(wrong answer)" in out and "projected out at layer 1" in out
    assert f"{result.p_agree['steered']:.3f}" in out and "done in" in out


def test_cli_parses_demo_and_rejects_bad_options():
    from interp.cli import build_parser
    from interp.commands.demo import DemoConfig
    from interp.config import dataclass_from_namespace

    args = build_parser().parse_args(
        ["demo", "--tui", "--alpha", "0.25", "--port", "0", "--no-sad"]
    )
    cfg = dataclass_from_namespace(DemoConfig, args)
    assert (
        cfg.tui and cfg.alpha == 0.25 and cfg.port == 0 and not cfg.sad and cfg.host == "127.0.0.1"
    )
    for bad in ({"port": 70000}, {"alpha_limit": 0.0}, {"preset": "gk-001", "question": "Q?"}):
        with pytest.raises(ConfigError):
            DemoConfig(**bad)


def test_conversation_is_one_user_turn(session):
    built = session.check(request())
    assert built.conversation == (Message("user", built.user),)
    assert (
        len(
            edits_for(
                Intervention("ablate", session.directions["persona-mean_diff"].direction, (0, 1, 2))
            )
        )
        == 3
    )


def test_ablation_scope_is_the_chosen_layer_or_all(lively, session):
    req = request(layer=2)
    assert session.interventions(req)["ablated"][0].layers == (2,)
    assert session.labels(req)["ablated"].endswith("at layer 2")
    entry = next(iter(session.directions.values()))
    everywhere = DemoSession(
        lively, [entry], norms=session.norms, max_new_tokens=4, alpha_limit=2.0, ablate_at="all"
    )
    assert everywhere.interventions(req)["ablated"][0].layers == (0, 1, 2)
    assert everywhere.labels(req)["ablated"].endswith("at all 3 layers (0-2)")
    result = collect(everywhere.run(req))
    layer_only = collect(session.run(req))
    assert abs(result.projection["ablated"]) < 1e-4
    assert result.p_agree["original"] == pytest.approx(layer_only.p_agree["original"])
    assert result.p_agree["ablated"] != pytest.approx(layer_only.p_agree["ablated"], abs=1e-6)
    with pytest.raises(ConfigError, match="ablate_at"):
        DemoSession(lively, [entry], norms=session.norms, ablate_at="some")  # type: ignore[arg-type]
