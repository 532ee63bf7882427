"""The only place hooks are registered: three backends behind one interface.

``get_backend(loaded, "torch" | "transformerlens" | "nnsight")`` returns a backend over the
same weights. See :mod:`interp.hooks.base` for the interface.
"""

from __future__ import annotations

from typing import Any, Literal

from interp.hooks.base import Backend, Edit, HookError, Recording, Reducer, truncate_after_eos
from interp.hooks.native import NativeBackend
from interp.hooks.positions import position_ids_from_mask

BackendName = Literal["torch", "transformerlens", "nnsight"]
BACKENDS: tuple[BackendName, ...] = ("torch", "transformerlens", "nnsight")


def get_backend(loaded: Any, name: BackendName = "torch", *, remote: bool = False) -> Backend:
    """A backend of the given name over ``loaded`` (weights shared, never copied).

    ``remote=True`` is only meaningful for nnsight (NDIF remote execution).
    """
    if remote and name != "nnsight":
        raise HookError("remote execution (NDIF) is only available with the nnsight backend")
    if name == "torch":
        return NativeBackend(loaded)
    # the other two wrap heavy optional packages (transformer-lens, nnsight): imported on use
    if name == "transformerlens":
        from interp.hooks.lens import LensBackend

        return LensBackend(loaded)
    if name == "nnsight":
        from interp.hooks.nnsight_backend import NnsightBackend

        return NnsightBackend(loaded, remote=remote)
    raise HookError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendName",
    "Edit",
    "HookError",
    "Recording",
    "Reducer",
    "get_backend",
    "position_ids_from_mask",
    "truncate_after_eos",
]
