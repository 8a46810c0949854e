"""The house has floors: no module imports from a floor above its own, and no import hides in a function.

core/ (infrastructure) < meddra/ and registry/ (clinics, patients, procedures, visits) < events/
(adverse events, follow-ups, medical reviews) < patients/ (patient links and diaries) < safety/
(expedited-report clocks) < intake/ and reports/ (what spans the domain apps; neither imports the
other) < signals/ (the nightly screen built on reports) and public/ (published runs); nothing
imports these two. config/ wires
everything and sits on the roof. Read with ast, so a string that merely mentions a module does not
count, and an import inside a function (the usual way to dodge a cycle) is refused for first-party
modules: Django's AppConfig.ready() is the one place that must import late.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOOR = {
    "core": 0,
    "meddra": 1,
    "registry": 1,
    "events": 2,
    "patients": 3,
    "safety": 4,
    "intake": 5,
    "reports": 5,
    "signals": 6,
    "public": 6,
}
FIRST_PARTY = set(FLOOR) | {"config"}

# Late imports that are not about cycles: (module path, imported module) -> why.
HEAVY = "matplotlib, reportlab and openpyxl load on the first document, not in every web worker (~60 MB RSS)"
LATE_IMPORTS_ALLOWED: dict[tuple[str, str], str] = {
    ("reports/documents/views.py", "reports.documents"): HEAVY,
    ("reports/documents/views.py", "reports.documents.workbook"): HEAVY,
    ("reports/documents/views.py", "reports.documents.pdf"): HEAVY,
}


def _modules():
    for app in FLOOR:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield app, path


def _imports(tree: ast.AST):
    """Yield (node, imported module name, is_top_level) for every import in ``tree``."""
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, id(node) in top_level
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node, node.module, id(node) in top_level


def _in_type_checking_block(tree: ast.AST, target: ast.AST) -> bool:
    return any(
        isinstance(node, ast.If)
        and "TYPE_CHECKING" in ast.unparse(node.test)
        and any(child is target for child in ast.walk(node))
        for node in ast.walk(tree)
    )


def test_no_module_imports_from_a_floor_above_its_own():
    upward = []
    for app, path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, module, _ in _imports(tree):
            other = module.split(".")[0]
            if other == "config" or (other in FLOOR and other != app and FLOOR[other] >= FLOOR[app]):
                upward.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {module}")
    assert upward == []


def test_no_first_party_import_hides_inside_a_function():
    late = []
    for _app, path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        ready_bodies = {
            id(child)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name == "ready" and path.name == "apps.py"
            for child in ast.walk(node)
        }
        for node, module, top_level in _imports(tree):
            relative = str(path.relative_to(ROOT))
            if top_level or module.split(".")[0] not in FIRST_PARTY or id(node) in ready_bodies:
                continue
            if _in_type_checking_block(tree, node) or (relative, module) in LATE_IMPORTS_ALLOWED:
                continue
            late.append(f"{relative}:{node.lineno} imports {module} inside a function")
    assert late == []


@pytest.mark.parametrize("app", sorted(FLOOR))
def test_every_floor_is_a_package_with_an_app_config(app):
    assert (ROOT / app / "__init__.py").exists()
    assert (ROOT / app / "apps.py").exists()
