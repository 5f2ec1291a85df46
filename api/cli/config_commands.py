"""`citewise config` and `citewise models list | prepare`: what citewise is configured with, and where it runs from."""

from __future__ import annotations

import json
from typing import Any

import typer

from api.cli.common import engine, out
from ingest.console.text import line
from ingest.core.errors import CitewiseError
from ingest.core.settings import load_settings

models_app = typer.Typer(no_args_is_help=True, help="Inspect and prepare local models.")


def config(as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
           markdown: bool = typer.Option(False, "--markdown", help="Print the settings reference (every setting, "
                                         "its default, bounds and meaning) as Markdown: docs/settings.md.")) -> None:
    """Print the effective settings (defaults, citewise.toml and CITEWISE_* variables combined)."""
    if markdown:
        from ingest.core.settings.reference import settings_reference

        out.print(line(settings_reference()))
        return
    data = json.loads(load_settings().model_dump_json())
    if as_json:
        out.print_json(json.dumps(data))
        return
    out.print(line(_to_toml(data)))


def _to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """TOML of the effective settings; nested sections ([search.rerank]) follow their parent's keys."""
    lines: list[str] = []
    for section, values in data.items():
        name = f"{prefix}{section}"
        lines.append(f"[{name}]")
        nested = {k: v for k, v in values.items() if isinstance(v, dict) and k not in ("fusion_weights",)}
        for key, value in values.items():
            if key in nested:
                continue
            lines.append(f"{key} = {json.dumps(value)}" if value is not None else f"# {key} = (unset)")
        lines.append("")
        if nested:
            lines.append(_to_toml(nested, f"{name}."))
    return "\n".join(lines)


@models_app.command("list")
def models_list() -> None:
    """Show configured models and where they resolve."""
    from ingest.core.model_resolver import BUILTIN_GGUF

    settings = load_settings()
    resolver = engine(settings).resolver
    for role in ("embedder", "writer", "fast"):
        name = getattr(settings.models, role)
        try:
            if role == "embedder":
                where = str(resolver.embedder_path(name))
            elif name in BUILTIN_GGUF:
                target = resolver.cache_dir / f"{name}.gguf"
                where = str(target) if target.exists() else "not assembled yet (`citewise models prepare`)"
            else:
                where = str(resolver.gguf_path(name))
        except CitewiseError as exc:
            where = f"unavailable: {exc.message}"
        out.print(line(f"{role:<9} {name:<30} {where}"))


@models_app.command("prepare")
def models_prepare(role: list[str] = typer.Argument(None, help="writer, fast (default: both)")) -> None:
    """Assemble and verify the GGUF models now, instead of on first use."""
    settings = load_settings()
    resolver = engine(settings).resolver
    for r in role or ["fast", "writer"]:
        if r not in ("writer", "fast"):
            raise CitewiseError(f"unknown model role {r!r}: use writer or fast")
        out.print(line(f"{r}: {resolver.gguf_path(getattr(settings.models, r))} (verified)"))
