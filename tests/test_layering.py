"""The architecture, checked on the source: what may import what (packaging extras, forum above
pgferry, no private names across modules, no import cycle) and how large a module may grow."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
# import names of the core dependencies (pyproject's `dependencies`) and of the `runtime` extra
CORE = {"click", "rich", "sqlglot", "psycopg", "psycopg_pool", "numpy", "prometheus_client"}
RUNTIME = {"cachetools", "redis"}
MAX_LINES = 500


def modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / package).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every absolute import in the file, function-level ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


def test_pgferry_imports_only_its_declared_dependencies_and_never_forum() -> None:
    stdlib = set(sys.stdlib_module_names)
    for name, path in modules("pgferry").items():
        allowed = CORE | RUNTIME if name.startswith("pgferry.runtime") else CORE
        for module, _names in imports(path):
            top = module.split(".")[0]
            assert top != "forum", f"{name} imports {module}: pgferry never imports the forum"
            assert top in stdlib or top == "pgferry" or top in allowed, (
                f"{name} imports {module}, not a core dependency"
            )


def test_no_module_imports_another_modules_private_names() -> None:
    for package in ("pgferry", "forum"):
        for name, path in modules(package).items():
            for module, names in imports(path):
                if module.split(".")[0] not in ("pgferry", "forum"):
                    continue
                private = [n for n in [module.split(".")[-1], *names] if n.startswith("_") and n != "__version__"]
                assert not private, f"{name} imports private {private} from {module}"


def test_pgferry_has_no_import_cycle() -> None:
    mods = modules("pgferry")
    graph = {
        name: {target for module, names in imports(path) for target in [module, *(f"{module}.{n}" for n in names)]}
        & set(mods) - {name}
        for name, path in mods.items()
    }
    # a package's __init__ re-exporting its submodules is not a cycle: drop edges to a parent package
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            assert state.get(target) != 1, "import cycle: " + " -> ".join([*trail, node, target])
            if target not in state:
                visit(target, [*trail, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_modules_stay_small_or_say_why() -> None:
    for package in ("pgferry", "forum"):
        for name, path in modules(package).items():
            text = path.read_text(encoding="utf-8")
            lines = text.count("\n")
            docstring = ast.get_docstring(ast.parse(text)) or ""
            assert lines <= MAX_LINES or "long because" in docstring, f"{name}: {lines} lines and no reason given"
