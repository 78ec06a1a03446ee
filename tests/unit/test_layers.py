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
