"""The layers import only downward (docs/architecture.md): read from the source with `ast`, lazy imports included.

0. ingest/core   only ingest.core          1. ingest (the rest)   only ingest
2. retrieval     ingest, retrieval         3. generate            ingest, retrieval, generate
4. api           anything but eval         4. eval                anything but api
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.unit

PACKAGES = ("ingest", "retrieval", "generate", "api", "eval")
#: Layer (a path prefix, most specific first) -> the top-level packages (or ingest.core) it may import.
ALLOWED: list[tuple[str, set[str]]] = [
    ("ingest/core/", {"ingest.core"}),
    ("ingest/", {"ingest"}),
    ("retrieval/", {"ingest", "retrieval"}),
    ("generate/", {"ingest", "retrieval", "generate"}),
    ("api/", {"ingest", "retrieval", "generate", "api"}),
    ("eval/", {"ingest", "retrieval", "generate", "eval"}),
]


def product_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def imported_modules(source: str, package: list[str]) -> list[tuple[int, str]]:
    """(line, module) for every import in `source`, at any depth (functions, TYPE_CHECKING blocks); relative
    imports resolved against `package`, the parts of the module's package name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            found.append((node.lineno, ".".join(base + ([node.module] if node.module else []))))
    return sorted(found)


def imports_of(path: Path) -> list[tuple[int, str]]:
    return imported_modules(path.read_text(), list(path.relative_to(ROOT).parts[:-1]))


def allowed_for(rel: str) -> set[str]:
    """What the file at `rel` (a path from the repository root) may import."""
    return next(allowed for prefix, allowed in ALLOWED if rel.startswith(prefix))


def is_allowed(module: str, allowed: set[str]) -> bool:
    """Imports of other top-level names (stdlib, third party) are not this test's business."""
    if module.split(".")[0] not in PACKAGES:
        return True
    return any(module == a or module.startswith(a + ".") for a in allowed)


def test_every_import_points_down_or_sideways() -> None:
    files = product_files()
    assert len(files) > 100 and any(p.match("ingest/core/*.py") for p in files)
    upward = [f"{path.relative_to(ROOT)}:{line}: imports {module}"
              for path in files for line, module in imports_of(path)
              if not is_allowed(module, allowed_for(path.relative_to(ROOT).as_posix()))]
    print("\n".join(upward))
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_the_check_sees_lazy_relative_and_type_checking_imports() -> None:
    """The reader of imports finds what a careless change would add, wherever it hides."""
    source = ("from __future__ import annotations\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
              "    from generate.engine import Engine\n\ndef f():\n    import api.cli\n    from . import text\n"
              "    from ..store import docstore\n")
    found = imported_modules(source, ["ingest", "core"])
    assert {(4, "generate.engine"), (7, "api.cli"), (8, "ingest.core"), (9, "ingest.store")} <= set(found)
    upward = [m for _, m in found if not is_allowed(m, allowed_for("ingest/core/probe.py"))]
    assert upward == ["generate.engine", "api.cli", "ingest.store"]
    assert not [m for _, m in found if not is_allowed(m, allowed_for("api/probe.py"))]


def test_api_never_imports_eval_which_registers_itself_through_an_entry_point() -> None:
    from api.cli.main import COMMANDS_GROUP

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][COMMANDS_GROUP] == {"eval": "eval.cli:eval_app"}
    from eval.cli import eval_app  # the entry point names something that exists

    assert eval_app.registered_commands or eval_app.registered_groups
    statically = [f"{path.relative_to(ROOT)}:{line}: imports {module}"
                  for path in sorted((ROOT / "api").rglob("*.py")) for line, module in imports_of(path)
                  if module == "eval" or module.startswith("eval.")]
    assert not statically, statically
