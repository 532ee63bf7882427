"""Probes: real signal is found, shuffled labels sit at chance, splits respect items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.directions import cosine, derive
from interp.probes import ProbeError, probe_layer, probe_layers, weight_direction_cosines


def _data(n_items=60, d=32, signal=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    truth = torch.randn(d, generator=g)
    truth /= truth.norm()
    item_offsets = torch.randn(n_items, d, generator=g)  # each item has its own location
    x, y, groups = [], [], []
    for i in range(n_items):
        for label in (0, 1):  # a matched pair per item
            x.append(item_offsets[i] + torch.randn(d, generator=g) * 0.5 + label * signal * truth)
            y.append(label)
            groups.append(f"item{i}")
    return torch.stack(x), np.array(y), np.array(groups), truth


def test_probe_finds_signal_and_shuffled_control_is_at_chance():
    x, y, groups, truth = _data(signal=3.0)
    result = probe_layer(x, y, groups, layer=4, n_boot=200)
    assert result.auroc > 0.9 and result.auroc_low > 0.8
    assert abs(result.shuffled_auroc - 0.5) < 0.15
    assert result.accuracy_low <= result.accuracy <= result.accuracy_high
    assert cosine(result.weight, truth) > 0.7


def test_no_signal_gives_chance():
    x, y, groups, _ = _data(signal=0.0, seed=1)
    result = probe_layer(x, y, groups, n_boot=100)
    assert result.auroc_low < 0.5 < result.auroc_high or abs(result.auroc - 0.5) < 0.15


def test_grouped_folds_never_split_an_item(monkeypatch):
    from sklearn.model_selection import GroupKFold

    x, y, groups, _ = _data(n_items=20)
    for train, test in GroupKFold(n_splits=5, shuffle=True, random_state=0).split(x, y, groups):
        assert not set(groups[train]) & set(groups[test])


def test_tables_and_errors():
    x, y, groups, _ = _data(n_items=20)
    table, weights = probe_layers({1: x, 2: x * 2}, y, groups, n_boot=50)
    assert list(table["layer"]) == [1, 2] and {"auroc", "auroc_low", "shuffled_auroc"} <= set(
        table.columns
    )
    d = derive("sad", "mean_diff", {1: x[y == 1], 2: x[y == 1]}, {1: x[y == 0], 2: x[y == 0]})
    cos = weight_direction_cosines(weights, [d], probe="warm_vs_original")
    assert len(cos) == 2 and cos["cosine"].between(-1, 1).all()
    with pytest.raises(ProbeError, match="single class"):
        probe_layer(x, np.zeros(len(y)), groups)
    with pytest.raises(ProbeError, match="cannot fill"):
        probe_layer(x[:6], y[:6], groups[:6])
