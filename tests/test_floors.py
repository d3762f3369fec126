"""The packages of ``src/modelgate`` stand on floors, and every import runs downward (or stays on
its floor): the drawing in docs/architecture.md, kept true. A module that imports a package above
its own floor fails here, naming the file and the import.

One of them is the data floor: SQL (SQLAlchemy, the table models of ``store/schema.py``, SQL text)
appears in ``store/`` only; every other package calls its functions.

Annotation-only imports (under ``if TYPE_CHECKING:``) count too: a type from above is a dependency
on above. The few exceptions are listed in ``ALLOWED`` with their reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "modelgate"

# Top floor first. A package (or top-level module) may import any floor below; on its own floor only
# the packages of a floor listed in ``SHARED`` import each other (api/ and doors/ never do).
FLOORS: list[tuple[str, ...]] = [
    ("app", "cli", "__main__"),  # entry points: build the app, the command line
    ("web",),  # the console and docs pages (the playground calls a door)
    ("api", "doors", "identity"),  # service endpoints; the doors, one package per dialect; SSO and SCIM
    ("httpkit", "httpserver", "drain"),  # the HTTP vocabulary shared by api/, doors/ and web/; the server
    ("gateway",),  # the metered core: admission, holds, routing, settling, logging
    ("cache",),  # the response cache the core is handed (exact and semantic)
    ("providers",),  # one adapter per upstream behind one Protocol
    ("accounts", "billing", "limits", "observability", "mail"),  # the domain rules; outgoing mail
    ("wire",),  # the chat shape every adapter speaks, cost headers, service-endpoint models
    ("store",),  # the one floor for SQL: one module per concept, the ledgers
    ("catalog",),  # models and prices (the ledger reads CREDITS_PER_USD)
    ("errors", "sanitize", "settings", "money", "__init__"),  # the ground: no modelgate imports above it
]

# Floors whose packages may import each other: the entry points, and the domain rules (accounts and
# billing share key identities and spending periods).
SHARED = {("app", "cli", "__main__"), ("accounts", "billing", "limits", "observability", "mail")}

# (importing file, imported package): why it may point up (or sideways).
ALLOWED: dict[tuple[str, str], str] = {
    ("catalog/prices.py", "providers"): "annotation only: Usage (providers/base.py) is priced here",
}


def floor_of(unit: str) -> int:
    for level, units in enumerate(FLOORS):
        if unit in units:
            return level
    raise AssertionError(f"src/modelgate/{unit} stands on no floor: add it to FLOORS (and the drawing)")


def unit_of(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0][:-3] if len(rel) == 1 else rel[0]


def imported_units(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("modelgate.")]
    return out


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        unit = unit_of(path)
        level = floor_of(unit)
        rel = str(path.relative_to(SRC))
        for line, target in imported_units(ast.parse(path.read_text(encoding="utf-8"))):
            if target == unit or (rel, target) in ALLOWED:
                continue
            where = f"src/modelgate/{rel}:{line} imports modelgate.{target}"
            if floor_of(target) < level:
                bad.append(f"{where}, a floor above {unit}")
            elif floor_of(target) == level and FLOORS[level] not in SHARED:
                bad.append(f"{where}, beside {unit} on its floor")
    return bad


def test_every_package_stands_on_a_floor() -> None:
    units = {unit_of(p) for p in SRC.rglob("*.py")}
    for unit in units:
        floor_of(unit)


def test_every_import_runs_downward() -> None:
    assert upward_imports() == []


def test_the_check_sees_an_upward_import() -> None:
    tree = ast.parse("from modelgate.doors.chat.door import ChatDoor\nimport modelgate.errors\n")
    assert imported_units(tree) == [(1, "doors"), (2, "errors")]
    assert floor_of("doors") < floor_of("gateway")  # so the gateway importing a door would be caught
    assert floor_of("api") == floor_of("doors") and FLOORS[floor_of("api")] not in SHARED  # and api <-> doors


# The table modules: ``store/schema.py`` and the ``store/schema_*.py`` beside it.
TABLE_MODULE = re.compile(r"modelgate\.store\.schema(_\w+)?")

# SQL text: statements as a driver would run them (upper-case keywords), not prose in a docstring.
SQL_TEXT = re.compile(
    r"\b(SELECT\b[\s\S]*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TABLE|INDEX|UNIQUE)|ALTER\s+TABLE|DROP\s+(TABLE|INDEX)|PRAGMA\s+\w+|SELECT\s+1)\b"
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def sql_outside_store(tree: ast.AST, where: str) -> list[str]:
    bad = []
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from modelgate.store import schema_web`` names the table module among the names
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            names = []
        for name in names:
            if name == "sqlalchemy" or name.startswith("sqlalchemy.") or TABLE_MODULE.fullmatch(name):
                bad.append(f"{where}:{node.lineno} imports {name}")
                break
        text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
        if text and id(node) not in docs and SQL_TEXT.search(text):
            bad.append(f"{where}:{node.lineno} has SQL text {text[:60]!r}")
    return bad


def sql_off_the_data_floor() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if unit_of(path) == "store":
            continue
        where = f"src/modelgate/{path.relative_to(SRC)}"
        bad += sql_outside_store(ast.parse(path.read_text(encoding="utf-8")), where)
    return bad


def test_sql_lives_in_store_only() -> None:
    assert sql_off_the_data_floor() == []


def test_the_check_sees_sql() -> None:
    caught = sql_outside_store(
        ast.parse(
            '"""Writes one INSERT per batch (prose)."""\n'
            "from sqlalchemy import select\n"
            "import sqlalchemy.ext.asyncio\n"
            "from modelgate.store.schema import Account\n"
            "from modelgate.store.schema_web import WebSession\n"
            "from modelgate.store import db, schema_identity\n"
            "import modelgate.store.schema_responses\n"
            "from modelgate.store.schemas import x\n"
            "Q = 'SELECT id FROM accounts WHERE email = ?'\n"
            "def f():\n"
            "    conn.execute(f'UPDATE accounts SET balance_credits = 0')\n"
            "    return 'Select a model from the list'\n"
        ),
        "m.py",
    )
    assert [c.split(" ", 2)[1] for c in caught] == ["imports"] * 6 + ["has"] * 2
    assert [c.split(":")[1].split(" ")[0] for c in caught] == ["2", "3", "4", "5", "6", "7", "9", "11"]
    # and the store's own modules are what the walk leaves out
    assert unit_of(SRC / "store" / "ledger.py") == "store"


# Callers import a name from the module that defines it. A module that imports a name only to hand
# it on (``from modelgate.x import N as N``) may be a caller's source only where listed here, with why.
REEXPORTS_IN_USE: dict[tuple[str, str], tuple[set[str] | None, str]] = {
    ("accounts/keys.py", "KeyIdentity"): (
        {"gateway/core.py", "gateway/admission.py"},
        "left while those two files were owned by others; the rest import it from store/keys.py",
    ),
    ("catalog/models.py", "CREDITS_PER_USD"): (
        None,
        "the catalogue's public constant (prices.py defines it)",
    ),
}


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("").parts
    return ".".join(("modelgate", *(rel[:-1] if rel[-1] == "__init__" else rel)))


def reexports_taken(files: dict[str, ast.AST]) -> list[str]:
    """``where:line takes N from M`` for each import of a name that M only re-exports."""
    handed_on: dict[tuple[str, str], str] = {}  # (module, name) -> its file
    for where, tree in files.items():
        if where.endswith("__init__.py"):
            continue
        for node in getattr(tree, "body", []):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("modelgate"):
                for alias in node.names:
                    if alias.asname == alias.name:
                        handed_on[(_module_of(SRC / where), alias.name)] = where
    bad = []
    for where, tree in files.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.module is None:
                continue
            for alias in node.names:
                source = handed_on.get((node.module, alias.name))
                if source is None or source == where:
                    continue
                allowed = REEXPORTS_IN_USE.get((source, alias.name))
                if allowed is not None and (allowed[0] is None or where in allowed[0]):
                    continue
                bad.append(f"src/modelgate/{where}:{node.lineno} takes {alias.name} from {node.module}")
    return bad


def test_callers_import_from_the_defining_module() -> None:
    files = {
        str(p.relative_to(SRC)): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(SRC.rglob("*.py"))
    }
    assert reexports_taken(files) == []


def test_the_check_sees_a_reexport_taken() -> None:
    files = {
        "accounts/manage.py": ast.parse("from modelgate.store.key_rows import get_key as get_key\n"),
        "api/keys.py": ast.parse("from modelgate.accounts.manage import get_key\n"),
        "api/other.py": ast.parse("from modelgate.store.key_rows import get_key\n"),
    }
    assert reexports_taken(files) == [
        "src/modelgate/api/keys.py:1 takes get_key from modelgate.accounts.manage"
    ]
