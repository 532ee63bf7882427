"""Prompt sets: records, writing with a content hash, reading back, and `interp data build`."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from interp.artifacts import ArtifactExistsError
from interp.commands.data import DataBuildConfig, run_data_build
from interp.config import ConfigError, add_dataclass_arguments, dataclass_from_namespace
from interp.data.build import prompt_list
from interp.data.contexts import CONDITIONS, load_contexts
from interp.data.errors import DataFormatError
from interp.data.items import PAPER_TASKS, load_embedded_items, read_items_jsonl
from interp.data.prompt_sets import build_prompts, read_prompt_set, write_prompt_set
from interp.data.templates import variant_set

FIXTURES = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture()
def fixture_prompts():
    items, _ = read_items_jsonl(FIXTURES / "interp_items.jsonl")
    return build_prompts(items, variant_set("grid"), load_contexts(), seed=0)


def test_prompt_records(fixture_prompts):
    assert len(fixture_prompts) == 4 * 28
    by_id = {p.prompt_id: p for p in fixture_prompts}
    sad = by_id["t-001/emotion:sad/incorrect"]
    assert sad.statement_id and sad.statement_id.startswith("sad-")
    assert sad.context_base == "t-001/unmodified/incorrect" and sad.context_edit == "insertion"
    assert sad.belief_base is None  # no preface control under sad in the paper's grid
    assert by_id["t-001/unmodified/incorrect"].belief_base == "t-001/unmodified/preface"
    assert by_id["t-001/stake:low/doubt"].belief_base == "t-001/stake:low/no_belief"
    assert by_id["t-001/stake:low/doubt"].context_edit == "replacement"
    assert (
        sad.segment("question") == sad.question
        and sad.segment("belief") == "I think the answer is Oxygen."
    )
    # the same statement for every template of an item and condition
    ids = {
        p.statement_id
        for p in fixture_prompts
        if p.item_id == "t-002" and p.condition == "relation:close"
    }
    assert len(ids) == 1


def test_write_and_read_back_with_hash(tmp_path, fixture_prompts):
    written = write_prompt_set(fixture_prompts, tmp_path / "ps", config={"seed": 0})
    data = (tmp_path / "ps" / "prompts.jsonl").read_bytes()
    manifest = json.loads((tmp_path / "ps" / "manifest.json").read_text())
    assert manifest["content_sha256"] == hashlib.sha256(data).hexdigest() == written.content_sha256
    assert (
        manifest["n_prompts"] == 112 and manifest["counts"]["medical"]["emotion:sad"]["doubt"] == 1
    )
    assert (tmp_path / "ps" / "meta.json").is_file()
    back = read_prompt_set(tmp_path / "ps")
    assert back.prompts == fixture_prompts and back.content_sha256 == written.content_sha256
    # writing the same set again is a no-op; other content is refused
    assert (
        write_prompt_set(fixture_prompts, tmp_path / "ps").content_sha256 == written.content_sha256
    )
    with pytest.raises(ArtifactExistsError):
        write_prompt_set(fixture_prompts[:10], tmp_path / "ps")


def test_read_detects_tampering(tmp_path, fixture_prompts):
    write_prompt_set(fixture_prompts, tmp_path / "ps")
    path = tmp_path / "ps" / "prompts.jsonl"
    path.write_text(path.read_text().replace("Oxygen", "Nitrogen", 1))
    with pytest.raises(DataFormatError, match="does not match its manifest"):
        read_prompt_set(tmp_path / "ps")


def test_default_folder_is_named_by_hash(tmp_path, monkeypatch, fixture_prompts):
    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path / "art"))
    written = write_prompt_set(fixture_prompts)
    assert written.path == tmp_path / "art" / "prompts" / written.content_sha256[:12]


def test_run_data_build_embedded_prints_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path / "art"))
    out = io.StringIO()
    assert (
        run_data_build(DataBuildConfig(preset="embedded"), console=Console(file=out, width=200))
        == 0
    )
    text = out.getvalue()
    items = load_embedded_items()
    n_items = Counter(i.task for i in items)
    for task in PAPER_TASKS:
        assert task in text
    for cond in CONDITIONS:
        assert cond in text
    assert f"{len(items) * 28} prompts of {len(items)} items" in text
    folders = list((tmp_path / "art" / "prompts").iterdir())
    assert len(folders) == 1
    ps = read_prompt_set(folders[0])
    assert ps.short_hash == folders[0].name and ps.short_hash in text
    counts = Counter((p.task, p.condition, p.template) for p in ps.prompts)
    assert counts[("medical", "emotion:sad", "incorrect")] == n_items["medical"]
    assert counts[("general_knowledge", "unmodified", "preface")] == n_items["general_knowledge"]


def test_run_data_build_from_a_source_with_validation(tmp_path):
    out = io.StringIO()
    config = DataBuildConfig(
        source=str(FIXTURES / "sycophancy_eval.jsonl"),
        format="sycophancy_eval",
        variants="extended",
        validate_with="tiny",
        out=str(tmp_path / "ps"),
    )
    assert run_data_build(config, console=Console(file=out, width=200)) == 0
    manifest = json.loads((tmp_path / "ps" / "manifest.json").read_text())
    assert manifest["pair_validation"]["ok"] is True
    assert manifest["items"]["merged"] == 1 and manifest["n_prompts"] == 3 * 34
    assert "line up" in out.getvalue()


def test_subsets_and_seed():
    base = dict(tasks=("medical",), per_task=3)
    prompts, _ = prompt_list(
        **base, conditions=("unmodified", "emotion:sad"), templates=("no_belief",)
    )
    assert len(prompts) == 3 * 2
    a, _ = prompt_list(**base, seed=0)
    b, _ = prompt_list(**base, seed=5)
    assert [p.user for p in a] != [p.user for p in b]
    assert [p.user for p in a] == [p.user for p in prompt_list(**base, seed=0)[0]]
    with pytest.raises(ConfigError, match="templates"):
        prompt_list(templates=("nope",))


def test_config_validation_and_command_line():
    with pytest.raises(ConfigError, match="go together"):
        DataBuildConfig(source="x.jsonl")
    with pytest.raises(ConfigError, match="tasks"):
        DataBuildConfig(tasks=("cooking",))
    with pytest.raises(ConfigError, match="variants"):
        DataBuildConfig(variants="all")
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, DataBuildConfig)
    ns = parser.parse_args(
        ["--tasks", "medical", "misconceptions", "--per-task", "2", "--separator", "space"]
    )
    config = dataclass_from_namespace(DataBuildConfig, ns)
    assert (
        config.tasks == ("medical", "misconceptions")
        and config.per_task == 2
        and config.separator == "space"
    )
