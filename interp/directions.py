"""Directions in the residual stream: a value object, the methods that derive one, and their
reliability statistics.

A :class:`Direction` holds one vector per layer for one site kind and position, the method that
made it and the hashes of the caches it came from; it saves as safetensors + meta.json. Methods
are small interchangeable functions with one signature (:data:`DirectionMethod`): given the
"positive" and "negative" activations of one layer (paired row by row when ``paired``), return a
vector in residual units. Everything here is pure computation on tensors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from safetensors.torch import load_file, save_file
from torch import Tensor

from interp import paths
from interp.artifacts import atomic_dir, provenance
from interp.errors import InputNotFoundError, InterpError

DirectionMethod = Callable[[Float[Tensor, "n d"], Float[Tensor, "n d"]], Float[Tensor, " d"]]


class DirectionError(InterpError, ValueError):
    """Inputs cannot define a direction (shapes, zero norm, missing layers), or a Direction
    folder cannot be read (the message names the folder or file)."""


def _check(pos: Tensor, neg: Tensor, paired: bool) -> None:
    if pos.ndim != 2 or neg.ndim != 2 or pos.shape[1] != neg.shape[1]:
        raise DirectionError(
            f"expected (n, d) activations of equal d, found {tuple(pos.shape)} and "
            f"{tuple(neg.shape)}"
        )
    if paired and pos.shape[0] != neg.shape[0]:
        raise DirectionError(
            f"paired method needs equal rows, found {pos.shape[0]} and {neg.shape[0]}"
        )
    if min(pos.shape[0], neg.shape[0]) < 2:
        raise DirectionError("need at least two rows on each side")


def mean_difference(pos: Float[Tensor, "n d"], neg: Float[Tensor, "m d"]) -> Float[Tensor, " d"]:
    """Difference of means (persona vectors, refusal direction, CAA)."""
    _check(pos, neg, paired=False)
    return pos.double().mean(0).sub(neg.double().mean(0)).float()


def pca_of_differences(pos: Float[Tensor, "n d"], neg: Float[Tensor, "n d"]) -> Float[Tensor, " d"]:
    """First principal axis of the paired differences (uncentred, so a shared shift counts),
    signed to agree with the mean difference and scaled by the mean projection on it."""
    _check(pos, neg, paired=True)
    diffs = (pos - neg).double()
    _, _, vh = torch.linalg.svd(diffs, full_matrices=False)
    axis = vh[0]
    mean = diffs.mean(0)
    if torch.dot(axis, mean) < 0:
        axis = -axis
    return (axis * torch.dot(axis, mean)).float()


def probe_weights(
    pos: Float[Tensor, "n d"], neg: Float[Tensor, "m d"], c: float = 0.01
) -> Float[Tensor, " d"]:
    """Logistic-regression weight vector (L2, on standardised features, mapped back to the
    residual basis), scaled by the mean difference's projection on it.

    Strong L2 (``c=0.01``) by default: on nearly separable classes a weakly regularised
    logistic weight vector wanders (it only needs to separate), while the direction is the
    object of study here."""
    from sklearn.linear_model import LogisticRegression

    _check(pos, neg, paired=False)
    x = torch.cat([pos, neg]).double().numpy()
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    scale = x.std(0) + 1e-8
    model = LogisticRegression(C=c, max_iter=2000).fit((x - x.mean(0)) / scale, y)
    w = torch.from_numpy(model.coef_[0] / scale)
    unit = w / w.norm()
    mean = pos.double().mean(0) - neg.double().mean(0)
    return (unit * torch.dot(unit, mean)).float()


METHODS: dict[str, tuple[DirectionMethod, bool]] = {
    "mean_diff": (mean_difference, False),
    "pca": (pca_of_differences, True),
    "probe": (probe_weights, False),
}


@dataclass(eq=False)
class Direction:
    """One vector per layer for a site kind and position, with provenance.

    ``vectors``: ``(len(layers), d_model)`` in residual units (not normalised).
    """

    name: str
    method: str
    site_kind: str
    position: str
    layers: tuple[int, ...]
    vectors: Float[Tensor, "layers d_model"]
    sources: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.layers):
            raise DirectionError(
                f"vectors must be (len(layers), d), found {tuple(self.vectors.shape)}"
            )
        if not torch.isfinite(self.vectors).all():
            raise DirectionError(f"direction {self.name!r} has non-finite values")

    def at(self, layer: int) -> Float[Tensor, " d_model"]:
        """The raw vector at ``layer``."""
        if layer not in self.layers:
            raise DirectionError(
                f"direction {self.name!r} has layers {list(self.layers)}, not {layer}"
            )
        return self.vectors[self.layers.index(layer)]

    def unit(self, layer: int) -> Float[Tensor, " d_model"]:
        """The unit vector at ``layer`` (refuses a zero vector)."""
        v = self.at(layer)
        n = v.norm()
        if n == 0:
            raise DirectionError(f"direction {self.name!r} is zero at layer {layer}")
        return v / n

    def save(self, folder: Path, replace: bool = False) -> Path:
        """Write :data:`paths.VECTORS_FILE` + ``meta.json`` atomically; refuses to overwrite."""
        with atomic_dir(Path(folder), replace=replace) as tmp:
            save_file({"vectors": self.vectors.contiguous()}, str(tmp / paths.VECTORS_FILE))
            meta = provenance(
                name=self.name,
                method=self.method,
                site_kind=self.site_kind,
                position=self.position,
                layers=list(self.layers),
                sources=self.sources,
                d_model=int(self.vectors.shape[1]),
                **self.meta,
            )
            (tmp / paths.META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        return Path(folder)

    @classmethod
    def load(cls, folder: Path) -> Direction:
        """Read a Direction folder; a missing or malformed file is named in the error."""
        folder = Path(folder)
        check_direction_folder(folder)
        try:
            meta = json.loads((folder / paths.META_FILE).read_text())
            vectors = load_file(str(folder / paths.VECTORS_FILE))["vectors"]
            known = {"name", "method", "site_kind", "position", "layers", "sources"}
            return cls(
                name=meta["name"],
                method=meta["method"],
                site_kind=meta["site_kind"],
                position=meta["position"],
                layers=tuple(meta["layers"]),
                vectors=vectors,
                sources=meta.get("sources", {}),
                meta={k: v for k, v in meta.items() if k not in known},
            )
        except (KeyError, ValueError, TypeError, OSError) as exc:
            if isinstance(exc, DirectionError):
                raise
            raise DirectionError(f"cannot read the Direction folder {folder}: {exc!r}") from None


def derive(
    name: str,
    method: str,
    pos: Mapping[int, Tensor],
    neg: Mapping[int, Tensor],
    *,
    site_kind: str = "resid_post",
    position: str = "last",
    sources: dict[str, str] | None = None,
) -> Direction:
    """A direction from per-layer activations ``{layer: (n, d)}`` with the named method."""
    if method not in METHODS:
        raise DirectionError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if set(pos) != set(neg):
        raise DirectionError(f"positive and negative layers differ: {sorted(pos)} vs {sorted(neg)}")
    fn, _ = METHODS[method]
    layers = tuple(sorted(pos))
    vectors = torch.stack([fn(pos[layer], neg[layer]) for layer in layers])
    return Direction(name, method, site_kind, position, layers, vectors, dict(sources or {}))


def cosine(a: Tensor, b: Tensor) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    na, nb = a.double().norm(), b.double().norm()
    if na == 0 or nb == 0:
        return 0.0
    return float(torch.dot(a.double(), b.double()) / (na * nb))


def split_half_stability(
    method: str,
    pos: Float[Tensor, "n d"],
    neg: Float[Tensor, "n d"],
    *,
    n_splits: int = 50,
    seed: int = 0,
    null: bool = True,
) -> dict[str, float]:
    """Cosine between directions from two random halves of the (paired) rows.

    Returns the mean cosine with a 95% interval over splits, and (``null=True``) the same under
    a sign-flip null: each pair's difference gets a random sign, which keeps the noise and
    removes any consistent direction.
    """
    fn, _ = METHODS[method]
    if pos.shape[0] != neg.shape[0]:
        raise DirectionError("split-half stability needs paired rows (equal counts)")
    n = pos.shape[0]
    if n < 4:
        raise DirectionError(f"need at least 4 pairs for split halves, found {n}")
    rng = np.random.default_rng(seed)

    def run(flip: bool) -> np.ndarray:
        out = []
        for _ in range(n_splits):
            order = rng.permutation(n)
            a, b = order[: n // 2], order[n // 2 :]
            p, q = pos.clone(), neg.clone()
            if flip:
                signs = torch.from_numpy(rng.integers(0, 2, n).astype(bool))
                p[signs], q[signs] = neg[signs], pos[signs]
            out.append(cosine(fn(p[a], q[a]), fn(p[b], q[b])))
        return np.array(out)

    real = run(False)
    result = {
        "cosine": float(real.mean()),
        "ci_low": float(np.quantile(real, 0.025)),
        "ci_high": float(np.quantile(real, 0.975)),
    }
    if null:
        flipped = run(True)
        result.update(
            null_cosine=float(flipped.mean()), null_high=float(np.quantile(flipped, 0.975))
        )
    return result


def relative_norm(vector: Tensor, activations: Float[Tensor, "n d"]) -> float:
    """‖vector‖ over the mean residual norm of ``activations`` at the same layer."""
    return float(vector.norm() / activations.norm(dim=-1).mean())


def random_cosine_null(d_model: int, n: int = 2000, seed: int = 0) -> dict[str, float]:
    """|cosine| between independent random directions in ``d_model`` dims: mean and 95th pct."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d_model, generator=g, dtype=torch.float64)
    b = torch.randn(n, d_model, generator=g, dtype=torch.float64)
    cos = (torch.nn.functional.cosine_similarity(a, b, dim=1)).abs().numpy()
    return {"mean_abs": float(cos.mean()), "q95_abs": float(np.quantile(cos, 0.95))}


def cosine_table(directions: Sequence[Direction]) -> pd.DataFrame:
    """Tidy cosine between every pair of directions at every shared layer:
    columns layer, a, b, cosine."""
    rows = []
    for i, a in enumerate(directions):
        for b in directions[i + 1 :]:
            for layer in sorted(set(a.layers) & set(b.layers)):
                rows.append(
                    {
                        "layer": layer,
                        "a": a.name,
                        "b": b.name,
                        "cosine": cosine(a.at(layer), b.at(layer)),
                    }
                )
    return pd.DataFrame(rows, columns=["layer", "a", "b", "cosine"])


def is_direction_folder(folder: Path) -> bool:
    """True when ``folder`` holds a Direction (:data:`paths.VECTORS_FILE` and ``meta.json``)."""
    folder = Path(folder)
    return (folder / paths.VECTORS_FILE).is_file() and (folder / paths.META_FILE).is_file()


def check_direction_folder(folder: Path) -> None:
    """Raise an error naming the path when ``folder`` is not a Direction folder."""
    folder = Path(folder)
    if not folder.exists():
        raise InputNotFoundError(f"direction folder {folder} does not exist")
    if not folder.is_dir():
        raise DirectionError(f"{folder} is a file, not a Direction folder")
    for name in (paths.META_FILE, paths.VECTORS_FILE):
        if not (folder / name).is_file():
            raise InputNotFoundError(
                f"{folder} is not a Direction folder: {folder / name} does not exist"
            )


def find_direction_folders(spec: Sequence[str | Path]) -> list[Path]:
    """The Direction folders named by ``spec``: each entry is a Direction folder
    (``Direction.save`` output) or a run folder holding such folders (an ``interp directions``
    run, or a study's ``08-directions-<hash>`` step), expanded to its members in name order.

    Raises :class:`~interp.errors.InputNotFoundError` naming the path that does not exist, holds
    no Direction, or lacks a file (e.g. a folder with vectors but no ``meta.json``).
    """
    out: list[Path] = []
    for entry in spec:
        p = Path(entry).expanduser()
        if not p.is_dir() or (p / paths.VECTORS_FILE).is_file():
            check_direction_folder(p)
            out.append(p)
            continue
        members = sorted(s for s in p.iterdir() if (s / paths.VECTORS_FILE).is_file())
        if not members:
            raise InputNotFoundError(
                f"{p} holds no Direction folder ({paths.VECTORS_FILE} + {paths.META_FILE}, "
                "in it or in its subfolders)"
            )
        for member in members:
            check_direction_folder(member)
        out.extend(members)
    return out


def load_directions(spec: Sequence[str | Path]) -> list[Direction]:
    """The Directions in :func:`find_direction_folders` ``(spec)``, in that order."""
    return [Direction.load(p) for p in find_direction_folders(spec)]
