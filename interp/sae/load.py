"""Load an SAE: a folder we trained (or any sae-lens folder), or a published one by release / id.

For the paper's real models, published SAEs replace training, e.g. release
``llama-3.1-8b-instruct-andyrdt`` id ``resid_post_layer_19_trainer_1`` or release
``goodfire-llama-3.1-8b-instruct`` id ``layer_19`` (Llama-3.1-8B-Instruct). Downloads need the
Hugging Face hub; offline, only a copy already in the local HF cache loads.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

import torch

from interp.config import ConfigError
from interp.hooks.native import decoder_layers
from interp.sites import Site

SAE_FOLDER = "sae"  # inside an `interp sae train` output folder
_LAYER = (
    re.compile(r"blocks\.(\d+)\.hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out)$"),
    re.compile(r"(?:layers?|layer_)[._]?(\d+)"),
)


def parse_spec(spec: str) -> tuple[str, str] | Path:
    """``RELEASE:ID`` (or ``RELEASE/ID`` is not accepted: ids may hold slashes) or a folder path."""
    p = Path(spec).expanduser()
    if p.exists():
        return p
    if ":" in spec:
        release, _, sae_id = spec.partition(":")
        if release and sae_id:
            return release, sae_id
    raise ConfigError(f"sae: {spec!r} is neither an existing folder nor RELEASE:ID")


def check_published(release: str, sae_id: str) -> dict[str, Any]:
    """The directory entry of a published SAE; ConfigError naming close matches if unknown."""
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    if release not in directory:
        close = difflib.get_close_matches(release, list(directory), n=5, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise ConfigError(f"sae release {release!r} is not in sae-lens' pretrained directory{hint}")
    entry = directory[release]
    if sae_id not in entry.saes_map:
        ids = list(entry.saes_map)
        close = difflib.get_close_matches(sae_id, ids, n=5, cutoff=0.3) or ids[:5]
        raise ConfigError(
            f"sae id {sae_id!r} is not in release {release!r} (model {entry.model}); e.g. "
            f"{', '.join(close)}"
        )
    return {
        "release": release,
        "sae_id": sae_id,
        "repo_id": entry.repo_id,
        "model": entry.model,
        "path": entry.saes_map[sae_id],
    }


def load_published(
    release: str, sae_id: str, *, device: str = "cpu", dtype: str = "float32"
) -> tuple[Any, dict[str, Any]]:
    """A published SAE through ``sae_lens.SAE.from_pretrained`` and its directory entry."""
    from sae_lens import SAE

    entry = check_published(release, sae_id)
    try:
        sae = SAE.from_pretrained(release, sae_id, device=device, dtype=dtype)
    except (
        OSError
    ) as exc:  # hub unreachable and not cached (requests / huggingface_hub errors are OSErrors)
        raise ConfigError(
            f"could not fetch SAE {release}:{sae_id} from {entry['repo_id']} "
            f"({type(exc).__name__}); offline, only SAEs "
            "already in the local Hugging Face cache load: download it on a connected machine first"
        ) from None
    return sae, entry


def load_sae(
    spec: str | Path, *, device: str = "cpu", dtype: str = "float32"
) -> tuple[Any, dict[str, Any]]:
    """An SAE from a folder (an `interp sae train` output or a sae-lens folder) or ``RELEASE:ID``;
    returns it (in eval mode) and where it came from."""
    from sae_lens import SAE

    where = parse_spec(str(spec))
    if isinstance(where, tuple):
        sae, entry = load_published(*where, device=device, dtype=dtype)
        return sae.eval(), {"source": "published", **entry}
    folder = where / SAE_FOLDER if (where / SAE_FOLDER / "cfg.json").is_file() else where
    if not (folder / "cfg.json").is_file():
        raise ConfigError(f"sae: {where} holds no sae-lens cfg.json (nor {SAE_FOLDER}/cfg.json)")
    sae = SAE.load_from_disk(str(folder), device=device, dtype=dtype)
    return sae.eval(), {"source": "folder", "folder": str(folder)}


def sae_site(sae: Any, layer: int | None = None) -> Site:
    """The site an SAE reads, from its metadata hook name (``layer`` overrides the layer)."""
    hook = str(sae.cfg.metadata.hook_name or "")
    m = _LAYER[0].search(hook)
    if m:
        site = Site(int(m.group(1)), m.group(2))  # type: ignore[arg-type]
    elif (m2 := _LAYER[1].search(hook)) is not None:
        site = Site(int(m2.group(1)), "resid_post")
    elif layer is None:
        raise ConfigError(
            f"cannot tell which layer the SAE reads (hook name {hook!r}); pass --layer"
        )
    else:
        site = Site(layer, "resid_post")
    return site if layer is None else Site(layer, site.kind)


def folder_meta(folder: Path) -> dict[str, Any]:
    """The meta.json of an `interp sae train` folder (empty when absent)."""
    f = Path(folder) / "meta.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def site_device(hf_model: Any, site: Site) -> torch.device:
    """The device a site's activations live on: that decoder layer's (under a device map each
    layer has its own), the model's first parameter's when the layer holds none."""
    for param in decoder_layers(hf_model)[site.layer].parameters():
        return param.device
    return next(hf_model.parameters()).device


def to_site_device(sae: Any, hf_model: Any, site: Site) -> Any:
    """``sae`` moved to where ``site``'s activations are (a GPU model's SAE runs on its GPU; the
    SAE keeps its dtype, activations are cast to it)."""
    return sae.to(site_device(hf_model, site))
