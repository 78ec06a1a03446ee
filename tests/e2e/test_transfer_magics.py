"""%import_env and %export_env in a real kernel (a fresh venv's, run by nbclient)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kernels import isolated_kernel_env, notebook, run_notebook

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_import_then_export_in_a_notebook(tmp_path, isolated, monkeypatch, project):
    kenv = isolated_kernel_env(tmp_path, project, monkeypatch)
    source = REPO / "tests" / "notebooks" / "colab_finetune.ipynb"
    out = tmp_path / "binder"
    nb = notebook("%load_ext bootstrap",
                  f"%import_env {source} --name ft",
                  f"%export_env ft --to repo2docker {out}",
                  "%import_env /no/such.ipynb")
    done = run_notebook(nb, kenv, cwd=tmp_path, monkeypatch=monkeypatch)

    assert f"imported {source} as profile ft" in done.text(1)
    assert "cell 6: !ls -la  (only shows something)" in done.text(1)
    assert (isolated["store"] / "profiles" / "ft.toml").is_file()
    assert "[secrets] HF_TOKEN, WANDB_API_KEY" in done.text(2)
    assert (out / "requirements.txt").read_text().startswith("transformers==4.46.3\n")
    # our errors show as their few lines in the cell, not a traceback
    assert done.error is not None
    assert "error: no such notebook: /no/such.ipynb" in done.text(3)
    assert "Traceback" not in done.text(3)
