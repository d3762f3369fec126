"""Every third-party module ``src/modelgate`` imports is installed by ``make serve``: declared in
pyproject's runtime ``dependencies`` or the extras ``make install`` takes (``local``, ``redis``),
or required by one of those. The test tools (the ``dev`` extra) are not there on a server: a module
only they bring in passes ``make test`` and fails the quickstart (as httpx once did)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_EXTRAS = ("local", "redis")  # the Makefile's `pip install -e ".[local,redis]"`


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wanted(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    if not extras:
        return req.marker.evaluate({"extra": ""})
    return any(req.marker.evaluate({"extra": e}) for e in extras)


def _installed_by_serve() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    roots = [Requirement(r) for r in project["dependencies"]]
    for extra in RUNTIME_EXTRAS:
        roots += [Requirement(r) for r in project["optional-dependencies"].get(extra, [])]
    seen: set[str] = set()
    todo = [(r.name, set(r.extras)) for r in roots if _wanted(r, set())]
    while todo:
        name, extras = todo.pop()
        key = _norm(name)
        if key in seen and not extras:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if _wanted(req, extras):
                todo.append((req.name, set(req.extras)))
    return seen


def _imported_modules() -> dict[str, str]:
    """Top-level module → the first file importing it, for every absolute import in the package."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "src" / "modelgate").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("modelgate", "__future__"):
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_module_is_installed_by_make_serve() -> None:
    installed = _installed_by_serve()
    dists = metadata.packages_distributions()
    missing = []
    for module, where in sorted(_imported_modules().items()):
        owners = {_norm(d) for d in dists.get(module, [])}
        if not owners & installed:
            missing.append(f"{module} (imported in {where}; from {sorted(owners) or 'nothing installed'})")
    assert not missing, "not installed by `make serve`: " + "; ".join(missing)


def test_the_check_sees_a_test_only_module() -> None:
    """pytest is a dev-only distribution: the walk must not find it installed for a server."""
    assert "pytest" not in _installed_by_serve()
    assert "fastapi" in _installed_by_serve()
