"""The import graph: no cycles among the project's modules, function-level imports included.

The layer contracts themselves (faces -> engine -> steps -> parts, independent
steps) are import-linter's, in pyproject.toml, run by .ci/run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
grimp = pytest.importorskip("grimp")


def test_no_module_imports_one_that_imports_it_back():
    graph = grimp.build_graph("bootstrap", "magics")
    cycles = sorted({tuple(sorted((a, b))) for a in graph.modules
                     for b in graph.find_modules_directly_imported_by(a)
                     if graph.chain_exists(importer=b, imported=a)})
    assert cycles == []


def test_the_layer_contracts_hold():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(REPO / "pyproject.toml")) == 0


FACES = ("bootstrap", "bootstrap.cli", "bootstrap.__main__")
ENGINE = ("bootstrap.session", "bootstrap.runner")


def test_parts_import_no_step_engine_or_face_and_steps_no_other_step():
    """The same rules as the contracts, over every module there is (a module added later is
    covered without being listed)."""
    graph = grimp.build_graph("bootstrap", "magics")
    steps = {m for m in graph.modules if m.startswith("bootstrap.steps.")}
    parts = {m for m in graph.modules if m.startswith("bootstrap.")} - steps - set(FACES) \
        - set(ENGINE) - {"bootstrap.steps"}
    upward = {(part, target) for part in parts
              for target in graph.find_modules_directly_imported_by(part)
              if target in steps | set(FACES) | set(ENGINE) | {"bootstrap.steps"}
              or target.startswith("magics")}
    assert upward == set()
    sideways = {(step, target) for step in steps
                for target in graph.find_modules_directly_imported_by(step)
                if target in steps and target != step}
    assert sideways == set()
