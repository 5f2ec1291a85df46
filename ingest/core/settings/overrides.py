"""Command-line and per-request overrides, checked against the bounds their settings declare.

A setting's pydantic field is the one place its bounds live: an option that overrides it goes through the
same validation (the settings models validate on assignment) and a failure names the option, the bounds and
the setting in one line, instead of a traceback or a silent fallback to the default.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from ingest.core.errors import CitewiseError, ConfigError


def field_bounds(model: type[BaseModel], name: str) -> dict[str, Any]:
    """The numeric and length constraints a settings field declares: {"ge": 1, "le": 6}, ..."""
    found: dict[str, Any] = {}
    for meta in model.model_fields[name].metadata:
        for key in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            value = getattr(meta, key, None)
            if value is not None:
                found[key] = value
    return found


def describe(model: type[BaseModel], name: str) -> str | None:
    """What a valid value of the field is, in words; None when it declares nothing to describe."""
    field = model.model_fields[name]
    choices = _choices(field.annotation)
    if choices:
        return "one of " + ", ".join(str(c) for c in choices)
    b = field_bounds(model, name)
    low = f"at least {b['ge']}" if "ge" in b else f"more than {b['gt']}" if "gt" in b else ""
    high = f"at most {b['le']}" if "le" in b else f"less than {b['lt']}" if "lt" in b else ""
    if "ge" in b and "le" in b:
        return f"between {b['ge']} and {b['le']}"
    if low or high:
        return " and ".join(p for p in (low, high) if p)
    if b.get("min_length"):
        return "non-empty"
    return None


def override(settings: BaseModel, setting: str, value: Any, option: str) -> None:
    """Set `setting` (a dotted path such as "research.max_rounds") to an option's value, or raise ConfigError
    naming the option, what it accepts and the setting: "--rounds: must be between 1 and 6, not -1 (...)"."""
    *parents, name = setting.split(".")
    section = settings
    for part in parents:
        section = getattr(section, part)
    try:
        setattr(section, name, value)
    except ValidationError as exc:
        raise ConfigError(f"{option}: {_problem(type(section), name, exc)}, not {value!r} "
                          f"(setting {setting})") from None


def validated(model: type[BaseModel], data: dict[str, Any], what: str,
              error: type[CitewiseError] = ConfigError, options: dict[str, str] | None = None) -> Any:
    """`model` built from `data` with every bound checked (`model_copy(update=...)` checks none), or `error`
    naming each field that is out of bounds; `options` names the command-line option of a field, so the
    message reads like an override's ("--rounds: must be between 1 and 6, not -1 (setting ...)")."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else ""
            where = f"{what}.{name}" if name else what
            problem = f"{_problem(model, name, exc, e['msg'])}, not {e.get('input')!r}"
            option = (options or {}).get(name)
            problems.append(f"{option}: {problem} (setting {where})" if option else f"{where}: {problem}")
        raise error("; ".join(problems)) from None


def check_range(option: str, value: int | float, ge: int | float | None = None,
                le: int | float | None = None) -> None:
    """Bounds of an option that overrides no setting (an eval run's --limit), phrased like the others."""
    if (ge is not None and value < ge) or (le is not None and value > le):
        bounds = (f"between {ge} and {le}" if ge is not None and le is not None
                  else f"at least {ge}" if ge is not None else f"at most {le}")
        raise ConfigError(f"{option}: must be {bounds}, not {value!r}")


def _problem(model: type[BaseModel], name: str, exc: ValidationError, msg: str | None = None) -> str:
    wanted = describe(model, name) if name in model.model_fields else None
    if wanted:
        return f"must be {wanted}"
    return (msg or exc.errors()[0]["msg"]).lower()


def _choices(annotation: Any) -> tuple[Any, ...]:
    """The values of a Literal (or an optional Literal) annotation."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            return typing.get_args(arg)
    return ()

