"""Activations and labels for the definitions, through :mod:`interp.cache`, reused across runs.

One cache per (model, row set, site kind) holds every layer of that site kind at the row set's
position, in ``<artifacts>/cache/<hash>/`` where the hash covers the model's provenance (weights
and adapter hashes), the backend, the rows and the cache spec. ``interp directions``,
``interp probes`` and ``interp trajectory`` therefore share caches, and a rerun reads them
instead of running the model. Sycophancy labels (forced choice on the belief prompts) are kept
the same way in ``<artifacts>/labels/<hash>/``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from interp import paths
from interp.artifacts import atomic_dir, provenance, sha256_json, write_json_atomic
from interp.cache import CachedActivations, CacheSpec, build_cache, open_cache, rows_hash
from interp.data.prompt_sets import Prompt
from interp.definitions.contrasts import ModelSide, RowSet
from interp.evaluate import forced_choice
from interp.hooks import get_backend
from interp.hooks.base import Backend
from interp.models import LoadedModel, attach_adapter, load_model
from interp.sites import sites

log = logging.getLogger(__name__)


def cache_spec(
    rowset: RowSet, site_kind: str, n_layers: int, batch_size: int = 8, dtype: str = "float32"
) -> CacheSpec:
    """Every layer of one site kind at the row set's position."""
    return CacheSpec(
        sites=tuple(sites([site_kind], range(n_layers))),
        positions=(rowset.position,),
        dtype=dtype,  # type: ignore[arg-type]
        batch_size=batch_size,
        shard_rows=batch_size * 16,
    )


def cache_folder(backend: Backend, rows_digest: str, spec: CacheSpec) -> Path:
    """``<artifacts>/cache/<hash of model provenance, backend, rows and spec>``."""
    key = {
        "model": backend.loaded.provenance(),
        "backend": backend.name,
        "rows": rows_digest,
        "spec": spec.to_json(),
    }
    return paths.artifact_dir("cache", sha256_json(key)[:16])


def ensure_cache(
    backend: Backend,
    rowset: RowSet,
    site_kind: str,
    *,
    batch_size: int = 8,
    dtype: str = "float32",
    show_progress: bool = True,
) -> CachedActivations:
    """The finished cache of ``rowset`` at every layer of ``site_kind`` (built or resumed if
    needed)."""
    spec = cache_spec(rowset, site_kind, backend.n_layers, batch_size, dtype)
    folder = cache_folder(backend, rows_hash(rowset.rows), spec)
    log.info("cache of %d rows of %s (%s): %s", len(rowset.rows), rowset.key, site_kind, folder)
    build_cache(
        backend,
        rowset.rows,
        spec,
        folder,
        extra_meta={"stage": "cache", "rowset": rowset.key},
        show_progress=show_progress,
    )  # resumes a partial cache; returns at once when complete
    return open_cache(folder, verify=False)


class ModelSource:
    """The original model and, optionally, the same model with an adapter, loaded lazily.

    The base model is loaded once; asking for the adapter side attaches the adapter in place, so
    every base-side request must come first (:meth:`caches` orders them so)."""

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        *,
        backend: str = "torch",
        load: dict[str, Any] | None = None,
        batch_size: int = 8,
        show_progress: bool = True,
    ):
        self.model_name, self.adapter = model, adapter
        self.backend_name = backend
        self.load = dict(load or {})  # load_model's dtype / device / device_map / load_in_4bit
        self.batch_size, self.show_progress = batch_size, show_progress
        self._loaded: LoadedModel | None = None
        self._side: ModelSide | None = None
        self.model_meta: dict[str, dict[str, Any]] = {}

    def backend(self, side: ModelSide) -> Backend:
        """A backend over the base model or over base+adapter."""
        if side == "adapter" and self.adapter is None:
            raise ValueError("no adapter was given, so there is no adapter side")
        if self._loaded is None:
            self._loaded = load_model(self.model_name, **self.load)
            self._side = "base"
            self.model_meta["base"] = self._loaded.provenance()
        if side != self._side:
            if self._side == "adapter":
                raise RuntimeError(
                    "base-side activations were asked for after the adapter was attached"
                )
            attach_adapter(
                self._loaded, str(self.adapter), merge=bool(self.load.get("merge_adapters"))
            )
            self._side = "adapter"
            self.model_meta["adapter"] = self._loaded.provenance()
        return get_backend(self._loaded, self.backend_name)  # type: ignore[arg-type]

    def caches(
        self, needs: Iterable[tuple[ModelSide, RowSet]], site_kinds: Sequence[str]
    ) -> dict[tuple[ModelSide, str, str], CachedActivations]:
        """Caches ``{(side, row set key, site kind): cache}`` for every need, base side first."""
        out = {}
        for side, rowset in sorted(set(needs), key=lambda n: (n[0] != "base", n[1].key)):
            backend = self.backend(side)
            for kind in site_kinds:
                out[(side, rowset.key, kind)] = ensure_cache(
                    backend,
                    rowset,
                    kind,
                    batch_size=self.batch_size,
                    dtype="float32",
                    show_progress=self.show_progress,
                )
        return out


def forced_choice_labels(
    backend: Backend, prompts: Sequence[Prompt], *, system: str | None = None, batch_size: int = 16
) -> pd.DataFrame:
    """Forced-choice results for ``prompts`` (``agrees_with_user`` on belief prompts), kept in
    ``<artifacts>/labels/<hash>/results.csv`` and reused when present."""
    key = {
        "model": backend.loaded.provenance(),
        "prompts": sha256_json([p.to_record() for p in prompts]),
        "system": system,
    }
    folder = paths.artifact_dir("labels", sha256_json(key)[:16])
    results = folder / "results.csv"
    if results.is_file():
        return pd.read_csv(results)
    log.info("labelling %d prompts by forced choice", len(prompts))
    df = forced_choice(backend, prompts, system=system, batch_size=batch_size)
    with atomic_dir(folder) as tmp:
        df.to_csv(tmp / "results.csv", index=False)
        write_json_atomic(
            tmp / paths.META_FILE, provenance(stage="labels", mode="forced_choice", **key)
        )
    return df
