"""Config dataclasses that double as the command line.

Every stage takes a frozen dataclass. Each field carries its help text in
``field(metadata={"help": ...})`` (use :func:`option`); :func:`add_dataclass_arguments` turns the
dataclass into argparse options and :func:`dataclass_from_namespace` turns parsed options back
into a validated instance. Validation lives in the dataclass's ``__post_init__`` and never does
I/O.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from interp.errors import InterpError

T = TypeVar("T")


class ConfigError(InterpError, ValueError):
    """A configuration value is invalid; the message names the field."""


def option(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with command-line help text.

    ``positional=True`` in ``kwargs`` makes it a positional argument; ``flag="-x"`` adds a short
    alias. Tuples are filled from repeated values (``--layers 3 5 7``).
    """
    metadata: dict[str, Any] = {
        "help": help,
        **{k: kwargs.pop(k) for k in ("positional", "flag") if k in kwargs},
    }
    if isinstance(default, list | dict | set):
        raise TypeError("use a tuple or default_factory for mutable defaults")
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one option per field of dataclass ``cls`` to ``parser`` (``--field-name``)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp, optional = _unwrap_optional(hints[f.name])
        help_text = f.metadata.get("help", "")
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        kwargs: dict[str, Any] = {
            "help": f"{help_text} (default: {default!r})" if has_default else help_text
        }
        origin = typing.get_origin(tp)
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
            kwargs["default"] = default
        elif origin is tuple:
            inner = typing.get_args(tp)[0] if typing.get_args(tp) else str
            kwargs["nargs"] = "*"
            kwargs["type"] = inner
            kwargs["default"] = default
        elif typing.get_origin(tp) is typing.Literal:
            choices = typing.get_args(tp)
            kwargs["choices"] = choices
            kwargs["type"] = type(choices[0])
            kwargs["default"] = default
        else:
            kwargs["type"] = tp if tp in (int, float, str) else str
            kwargs["default"] = default
        if f.metadata.get("positional"):
            if has_default:
                kwargs["nargs"] = "?"
            kwargs.pop("action", None) if tp is not bool else None
            parser.add_argument(f.name, **kwargs)
        else:
            names = [f"--{f.name.replace('_', '-')}"]
            if "flag" in f.metadata:
                names.insert(0, f.metadata["flag"])
            kwargs["dest"] = f.name
            if not has_default and not optional:
                kwargs["required"] = True
            parser.add_argument(*names, **kwargs)


def dataclass_from_namespace(cls: type[T], ns: argparse.Namespace | Mapping[str, Any]) -> T:
    """Build ``cls`` from parsed options, converting lists to tuples; errors name the field."""
    values = vars(ns) if isinstance(ns, argparse.Namespace) else dict(ns)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.init and f.name in values:
            v = values[f.name]
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from exc


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists, paths strings)."""
    raw = dataclasses.asdict(config)
    return json.loads(json.dumps(raw, default=str))


def config_hash(config: Any) -> str:
    """Short stable hash of a config dataclass (sorted JSON, sha256, 12 hex chars)."""
    payload = json.dumps(config_to_dict(config), sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()[:12]
