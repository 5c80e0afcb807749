"""Dependencies point one way (pyproject.toml, [tool.importlinter]): checked by lint-imports.

api > evaluation > application > answers | identity | ingest > retrieval > control > policies:
a package imports only those below it, and the siblings not each other. The second test shows
the check can fail: the same packages with one import reversed are refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Every package the contract names (so a package added there is copied here too).
PACKAGES = tuple(tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
                 ["tool"]["importlinter"]["root_packages"])
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the packages under `root` (found there first, not where the venv's
    editable install points)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([str(LINT_IMPORTS), "--no-logo", "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_imports_point_one_way() -> None:
    run = _lint_imports(REPO)
    assert run.returncode == 0, f"lint-imports failed:\n{run.stdout}\n{run.stderr}"
    assert "1 kept, 0 broken" in run.stdout


def test_a_reversed_import_is_refused(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    principals = tmp_path / "policies" / "principals.py"
    principals.write_text(principals.read_text() + "\nimport api  # reversed: bottom imports top\n")

    run = _lint_imports(tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "BROKEN" in output, output
    assert "policies.principals -> api" in output, output
