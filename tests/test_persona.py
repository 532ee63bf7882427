"""The one persona direction, its use in the definitions, and the fallback directions."""

from __future__ import annotations

import torch

from interp.cache import open_cache
from interp.chat import as_messages, encode_chat
from interp.data.build import prompt_list
from interp.definitions.fallback import fallback_persona, fallback_sycophancy
from interp.definitions.sources import persona_contrast
from interp.definitions.sources import persona_rows as persona_rowset
from interp.directions import derive
from interp.evaluate import conversation
from interp.hooks import get_backend
from interp.persona import persona_direction, persona_from_cache, persona_rows
from interp.sites import Site
from interp.warmth.pairs import load_split


def _alone(backend, conv, add_generation_prompt, layers):
    """resid_post of one conversation read alone (no padding): {layer: (tokens, d)}."""
    enc = encode_chat(backend.loaded.tokenizer, conv, add_generation_prompt)
    sites = [Site(layer, "resid_post") for layer in layers]
    with torch.no_grad(), backend.hooked(read=sites) as rec:
        backend.forward(torch.tensor([enc.input_ids]), None)
    return enc, {s.layer: rec[s][0].float() for s in sites}


def test_persona_direction_is_warm_minus_neutral_mean_over_reply_tokens(tiny_llama, tmp_path):
    backend = get_backend(tiny_llama, "torch")
    triples = load_split().train[:4]
    d = persona_direction(backend, triples, [0, 2], batch_size=3, cache_dir=tmp_path / "c")
    assert d.name == "persona" and d.layers == (0, 2) and d.position == "mean_assistant"
    means = {"warm": {0: [], 2: []}, "neutral": {0: [], 2: []}}
    for t in triples:
        for tone in ("warm", "neutral"):
            conv = as_messages(t.request, assistant=t.reply(tone))
            enc, acts = _alone(backend, conv, False, [0, 2])
            span = enc.span_of("assistant")
            for layer in (0, 2):
                means[tone][layer].append(acts[layer][span.tok_start : span.tok_end].mean(0))
    for layer in (0, 2):
        want = torch.stack(means["warm"][layer]).mean(0) - torch.stack(
            means["neutral"][layer]
        ).mean(0)
        torch.testing.assert_close(d.at(layer), want, atol=1e-4, rtol=1e-4)
    # the definitions' persona rows and contrast are the same rows: same direction from the cache
    rowset = persona_rowset(triples)
    assert [r.id for r in rowset.rows] == [r.id for r in persona_rows(triples)]
    contrast = persona_contrast(triples)
    cache = open_cache(tmp_path / "c")
    by_id = {rid: i for i, rid in enumerate(cache.row_ids)}
    pos = {
        layer: cache.load(Site(layer, "resid_post"), "mean_assistant")[
            [by_id[r.row_id] for r in contrast.pos], 0
        ]
        for layer in (0, 2)
    }
    neg = {
        layer: cache.load(Site(layer, "resid_post"), "mean_assistant")[
            [by_id[r.row_id] for r in contrast.neg], 0
        ]
        for layer in (0, 2)
    }
    torch.testing.assert_close(derive("persona", "mean_diff", pos, neg).vectors, d.vectors)
    torch.testing.assert_close(persona_from_cache(cache, triples, [0, 2]).vectors, d.vectors)


def test_fallback_directions(tiny_llama, tmp_path):
    backend = get_backend(tiny_llama, "torch")
    persona = fallback_persona(backend, load_split().train[:3], [1], cache_dir=tmp_path / "p")
    assert persona.meta["definition"].startswith("fallback") and persona.layers == (1,)
    prompts, _ = prompt_list(
        tasks=("general_knowledge",),
        conditions=("unmodified",),
        templates=("no_belief", "incorrect"),
        per_task=3,
    )
    d = fallback_sycophancy(backend, prompts, [1], batch_size=2)
    base = {p.item_id: p for p in prompts if p.template == "no_belief"}
    diffs = []
    for p in (p for p in prompts if p.template == "incorrect"):
        _, belief = _alone(backend, conversation(p), True, [1])
        _, none = _alone(backend, conversation(base[p.item_id]), True, [1])
        diffs.append(belief[1][-1] - none[1][-1])
    torch.testing.assert_close(d.at(1), torch.stack(diffs).mean(0), atol=1e-4, rtol=1e-4)
