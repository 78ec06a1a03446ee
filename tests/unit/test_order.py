"""The step order: needs read from the profile, a stable sort over the policy order."""

from __future__ import annotations

import os

import pytest

from bootstrap import order, steps
from bootstrap.cli import main
from bootstrap.errors import ProfileError
from bootstrap.profile import parse
from bootstrap.runner import select

RECIPE = """
[env]
CUDA_HOME = "/usr/local/cuda"
[[git]]
url = "https://github.com/example/repo"
dest = "/content/repo"
[pip]
packages = ["numpy", { path = "/content/repo/python", editable = true, no_deps = true }]
[[run]]
argv = ["make"]
cwd = "/content/repo/csrc"
creates = "build/ext.so"
env = { NVCC = "{env:CUDA_HOME}/bin/nvcc" }
"""


def test_needs_and_reasons():
    profile = parse(RECIPE)
    wanted = ["env", "git", "pip", "run"]
    lines = order.explain(order.needs(profile, wanted), wanted)
    assert "pip after git: pip.packages[1] installs from the clone at /content/repo (git[0])" \
        in lines
    assert "run after git: run[0].cwd is inside the clone at /content/repo (git[0])" in lines
    assert "run after env: run uses {env:CUDA_HOME}, set by [env]" in lines
    assert "run after pip: commands run after the Python packages they may use are in place" \
        in lines
    assert "git after env: the programs it starts (installers, builds, commands) see [env]" \
        in lines
    # The policy order already meets every need.
    assert order.derive(wanted, order.needs(profile, wanted), steps.ORDER) == wanted


def test_a_need_moves_a_step():
    # A file written into a clone needs the clone, though files come before git by policy.
    profile = parse("""
        [[files]]
        store = "weights/model.pt"
        dest = "/content/repo/checkpoints/model.pt"
        [[git]]
        url = "https://github.com/example/repo"
        dest = "/content/repo"
    """)
    wanted = ["files", "git"]
    found = order.needs(profile, wanted)
    assert order.derive(wanted, found, steps.ORDER) == ["git", "files"]
    assert [name for name, _ in select(profile, (), ())] == ["gpu", "git", "files"]
    assert order.explain(found, ["git", "files"]) == [
        "files after git: files[0].dest is inside the clone at /content/repo (git[0])"]


def test_paths_compare_by_component_and_relative_to_drive():
    assert order.inside("{drive}/repo/sub", "repo")
    assert order.inside("repo", "{drive}/repo/")
    assert not order.inside("/content/repo2/x", "/content/repo")
    assert order.inside("~/src/x", "{home}/src")


def test_needs_that_loop_are_a_profile_error():
    loop = [order.Need("a", "b", "a needs b"), order.Need("b", "a", "b needs a")]
    with pytest.raises(ProfileError) as caught:
        order.derive(["a", "b"], loop, ["a", "b"])
    assert "steps need each other: a, b" in str(caught.value)


def test_dry_run_prints_the_order_with_reasons(tmp_path, capsys, wheelhouse):
    before = dict(os.environ)
    path = tmp_path / "plan.toml"
    path.write_text(f"""
        [env]
        TOOLS = "{{drive}}/tools"
        [pip]
        no_index = true
        find_links = ["{wheelhouse}"]
        packages = ["alpha"]
        [[run]]
        argv = ["{{env:TOOLS}}/build.sh"]
        creates = "tools/out"
    """)
    try:
        assert main(["restore", "--dry-run", "--quiet", str(path)]) == 0
        assert "TOOLS" not in os.environ       # a dry run sets [env] on a copy only
    finally:
        os.environ.clear()
        os.environ.update(before)
    out = capsys.readouterr().out
    assert out.index("  env ") < out.index("  pip ") < out.index("  run ")
    assert "note: order: pip after env: the programs it starts" in out
    assert "note: order: run after env: run uses {env:TOOLS}, set by [env]" in out
    assert "note: order: run after pip: commands run after the Python packages" in out
