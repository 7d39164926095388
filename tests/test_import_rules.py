"""The house rules of ARCHITECTURE.md, checked on the source (ast), so a violation fails CI by name.

1. ``recmodels/`` is pure: it imports neither prefect nor duckdb, and reads no environment
   (no ``os.environ``, ``os.getenv``, ``environ``/``getenv`` imported from os).
2. The pipeline packages (``tasks/common``, ``ingest``, ``features``, ``train``, ``publish``, ``report``)
   import nothing from ``tasks.tools`` (tools may import the pipeline, never the reverse).
3. Flow modules (every ``flows/*.py`` that defines a Prefect ``@flow``; ``cli.py``, ``render.py`` and
   ``demo.py`` are the command line and its presentation over the flows) read like a table of contents:
   a. no SQL: no ``sql(...)`` call, no ``.execute(...)`` / ``.sql(...)`` method call, no duckdb or
      SQL-loader import;
   b. no loops over model results. The checkable form: every ``for`` loop and comprehension iterates
      over something whose source text names days or dates, landing files or inputs, the jobs the flow
      submits as tasks, task futures, the night's plan, or a ``range`` (``ITERABLE_WORDS``). A loop over ``results``, ``metrics``,
      ``decisions`` or a model's outputs therefore fails: that logic belongs in ``tasks/``;
   c. no business rules spelled as strings: no comparison with a string literal (statuses, families,
      protocol names are compared in ``tasks/``, with the enums of ``tasks.common.models`` /
      ``tasks.publish.decision``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PIPELINE = ("common", "ingest", "features", "train", "publish", "report")
ITERABLE_WORDS = ("day", "date", "file", "input", "job", "fut", "plan", "range")
PRESENTATION = ("cli.py", "render.py", "demo.py")


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _where(path: Path, node_or_line: ast.AST | int) -> str:
    line = node_or_line if isinstance(node_or_line, int) else node_or_line.lineno
    return f"{path.relative_to(REPO)}:{line}"


def pure_model_violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = [f"{_where(path, ln)} imports {name}" for ln, name in _imports(tree)
             if name.split(".")[0] in ("prefect", "duckdb") or name in ("os.environ", "os.getenv")]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            found.append(f"{_where(path, node)} reads the environment ({ast.unparse(node)})")
    return found


def pipeline_violations(path: Path) -> list[str]:
    return [f"{_where(path, ln)} imports {name}" for ln, name in _imports(ast.parse(path.read_text()))
            if name == "tasks.tools" or name.startswith("tasks.tools.")]


def _defines_flow(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                target = d.func if isinstance(d, ast.Call) else d
                if ast.unparse(target) in ("flow", "prefect.flow"):
                    return True
    return False


def flow_violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = [f"{_where(path, ln)} imports {name}" for ln, name in _imports(tree)
             if name.split(".")[0] == "duckdb" or name.startswith("tasks.common.sqlfiles")]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Name) and f.id == "sql") or (isinstance(f, ast.Attribute) and f.attr in ("execute", "sql")):
                found.append(f"{_where(path, node)} runs SQL ({ast.unparse(f)})")
        iters = [node.iter] if isinstance(node, ast.For | ast.AsyncFor) else (
            [g.iter for g in node.generators] if isinstance(node, ast.ListComp | ast.SetComp
                                                               | ast.DictComp | ast.GeneratorExp) else [])
        for it in iters:
            text = ast.unparse(it).lower()
            if not any(w in text for w in ITERABLE_WORDS):
                found.append(f"{_where(path, it)} loops over {ast.unparse(it)} (not days, files, jobs, futures or the plan)")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides):
                found.append(f"{_where(path, node)} compares with a string literal ({ast.unparse(node)})")
    return found


def _flow_modules() -> list[Path]:
    return [p for p in _modules(REPO / "flows") if p.name not in PRESENTATION and _defines_flow(ast.parse(p.read_text()))]


def test_recmodels_is_pure():
    found = [v for p in _modules(REPO / "recmodels") for v in pure_model_violations(p)]
    assert not found, "recmodels must not import prefect/duckdb or read the environment:\n" + "\n".join(found)


def test_pipeline_packages_import_no_tools():
    found = [v for pkg in PIPELINE for p in _modules(REPO / "tasks" / pkg) for v in pipeline_violations(p)]
    assert not found, "pipeline code imports tasks.tools:\n" + "\n".join(found)


def test_flows_hold_no_sql_no_loops_over_results_no_string_rules():
    modules = _flow_modules()
    assert {p.name for p in modules} >= {"nightly.py", "ingest.py", "train.py"}  # the rule sees the flows
    found = [v for p in modules for v in flow_violations(p)]
    assert not found, "flows must be a table of contents (see this test's docstring):\n" + "\n".join(found)


PLANTED = {
    "recmodels": ("import os\nimport duckdb\n\ndef device():\n    return os.environ.get('X')\n", pure_model_violations,
                  ["imports duckdb", "reads the environment"]),
    "pipeline": ("from tasks.tools.synth import write_yoochoose_days\n", pipeline_violations, ["imports tasks.tools"]),
    "flow": (
        "from prefect import flow\nfrom tasks.common.sqlfiles import sql\n\n@flow\ndef night(con, results):\n"
        "    con.execute(sql('x'))\n    for r in results:\n        if r['family'] == 'autoencoder':\n"
        "            pass\n    return [d for d in range(3)]\n",
        flow_violations, ["imports tasks.common.sqlfiles", "runs SQL (sql)", "runs SQL (con.execute)",
                          "loops over results", "compares with a string literal"]),
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_each_rule_catches_a_planted_violation(kind, tmp_path):
    source, check, expected = PLANTED[kind]
    planted = REPO / "tests" / f"_planted_{kind}_{tmp_path.name}.py"  # inside the repo: paths print relative
    planted.write_text(source)
    try:
        found = check(planted)
    finally:
        planted.unlink()
    for needle in expected:
        assert any(needle in f for f in found), (needle, found)
    if kind == "flow":
        assert not any("range(3)" in f for f in found)  # a loop over a range is allowed
