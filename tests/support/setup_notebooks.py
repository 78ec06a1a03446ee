"""Small real notebooks for tests, and a real kernel environment to run them in.

    from tests.support.setup_notebooks import write_notebook, code, markdown

    write_notebook(path, [code("n = 1", tags=["parameters"]), markdown("# hi"), code("1/0")])
    write_notebook(path, cells, colab=True)   # Colab-style: kernelspec without language

Kernels are the ``python3`` kernelspec of the running interpreter (ipykernel);
``kernel_env`` makes them import this checkout's ``bootstrap`` and keeps their
IPython profile apart from the user's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parent.parent.parent


def code(source: str, *, tags: Iterable[str] = ()) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "tags": list(tags)}


def markdown(source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "source": source, "tags": []}


def write_notebook(path: Path, cells: Iterable[dict[str, Any]], *, colab: bool = False) -> Path:
    """Write a v4 notebook; ``colab``: metadata as Colab saves it (no language anywhere)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook()
    if colab:
        nb.metadata = {"colab": {"provenance": []},
                       "kernelspec": {"name": "python3", "display_name": "Python 3"}}
    else:
        nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"},
                       "language_info": {"name": "python"}}
    for cell in cells:
        make = new_code_cell if cell["cell_type"] == "code" else new_markdown_cell
        new = make(cell["source"])
        if cell["tags"]:
            new.metadata["tags"] = list(cell["tags"])
        nb.cells.append(new)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def read_notebook(path: Path) -> Any:
    import nbformat

    return nbformat.read(str(path), as_version=4)


def errors_in(nb: Any) -> list[tuple[int, str, str]]:
    """(cell index, ename, evalue) of every error output."""
    return [(i, out.get("ename", ""), out.get("evalue", ""))
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]
