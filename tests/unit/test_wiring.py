"""Wiring without import side effects: projections, migrations, routers and start-up hooks are listed
explicitly, and importing a module never changes another module's tables."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("producer", "tracking", "ingest", "query", "registry", "auth")
_MUTATORS = {"append", "extend", "update", "setdefault", "add", "insert", "register"}


def _module_level_mutations(path: Path) -> list[str]:
    """Top-level statements that mutate something: ``X.append(...)``, ``X[k] = ...``, ``X.attr = ...``."""
    found = []
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr in _MUTATORS:
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}")
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, (ast.Subscript, ast.Attribute)) for t in targets):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_no_module_mutates_shared_state_when_imported() -> None:
    offenders = [m for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py")) for m in _module_level_mutations(p)]
    assert offenders == []


def test_the_scanner_catches_a_registration_on_import(tmp_path: Path) -> None:
    bad = tmp_path / "area.py"
    bad.write_text("from x import ROUTERS, TABLE\nROUTERS.append(1)\nTABLE['k'] = 2\nok = [1]\n")
    assert len(_module_level_mutations(bad)) == 2


_PROBE = """
import json, importlib, pkgutil
import ingest.rows, ingest.schema, producer.contract
def snap():
    return {"projectors": sorted(ingest.rows.PROJECTORS), "migrations": {k: len(v) for k, v in ingest.schema.MIGRATIONS.items()},
            "tables": list(ingest.schema.PROJECTION_TABLES), "types": sorted(producer.contract.EVENT_TYPES)}
before = snap()
import query.app, query.mlflow_api
for pkg in ("query", "registry", "ingest", "tracking", "producer"):
    mod = importlib.import_module(pkg)
    for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
after = snap()
top, api, artifact = query.mlflow_api.routers()
print(json.dumps({"same": before == after, "before": before, "routers": [len(top), len(api), len(artifact)],
                  "hooks": [h.__name__ for h in query.app.STARTUP_HOOKS]}))
"""


def test_importing_everything_changes_no_table_and_wiring_is_explicit() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["same"] is True
    assert {"metrics_logged", "run_created", "experiment_tag_deleted", "run_inputs_logged"} <= set(
        got["before"]["projectors"])
    assert {"run_inputs", "model_metrics", "metric_points"} <= set(got["before"]["tables"])
    assert got["routers"][1] >= 6 and got["hooks"] == ["start_auth", "start_registry", "start_sql"]
