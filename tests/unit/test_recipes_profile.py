"""Profile keys for real setup scripts: [[run]] entries, pip table entries, scoped indexes."""

from __future__ import annotations

import pytest

from bootstrap.errors import ProfileError
from bootstrap.profile import Command, PipIndex, PipPackage, dump, parse


def problems(text: str) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        parse(text, source="p.toml")
    return [p.line() for p in caught.value.problems]


def test_tables_parse_and_round_trip():
    text = """
        [pip]
        packages = [
          "numpy<2",
          { requirement = "flash-attn==2.6.3", no_deps = true },
          { requirement = "transformers", upgrade = true },
          { path = "{drive}/repo/python", editable = true, no_deps = true, extras = ["dev"] },
        ]
        [[pip.indexes]]
        url = "https://download.pytorch.org/whl/cu121"
        packages = ["torch", "torchvision"]
        [[pip.indexes]]
        find_links = "{drive}/wheels"
        packages = ["my-kernels"]

        [[run]]
        name = "build"
        argv = ["make", "-j2"]
        cwd = "/content/repo"
        env = { CC = "gcc" }
        timeout = 600
        creates = "build/tool"
        [[run]]
        shell = "sed -i 's/a/b/' conf.ini && chmod +x run.sh"
        unless = ["grep", "-q", "b", "conf.ini"]
    """
    profile = parse(text)
    assert profile.pip.packages[1] == PipPackage(requirement="flash-attn==2.6.3", no_deps=True)
    assert profile.pip.packages[3].extras == ["dev"]
    assert profile.pip.indexes[0] == PipIndex(packages=["torch", "torchvision"],
                                              url="https://download.pytorch.org/whl/cu121")
    assert profile.run[0] == Command(argv=["make", "-j2"], name="build", cwd="/content/repo",
                                     env={"CC": "gcc"}, timeout=600.0, creates="build/tool")
    assert parse(dump(profile)) == profile


def test_argv_string_suggests_a_list_or_shell():
    assert problems('[[run]]\nargv = "make -j2"\n') == [
        "p.toml: run[0].argv: must be a list of strings (no shell runs it) (got 'make -j2'); "
        "hint: write argv = [\"make\", \"-j2\"], or shell = 'make -j2' to run it with /bin/sh"]
    assert problems('[[run]]\nargv = "make && make install"\n') == [
        "p.toml: run[0].argv: must be a list of strings (no shell runs it) "
        "(got 'make && make install'); hint: write shell = 'make && make install' to run it "
        "with /bin/sh"]


def test_shell_syntax_in_argv_needs_the_shell_key():
    lines = problems('[[run]]\nargv = ["cd repo && make"]\n'
                     '[[run]]\nargv = ["make", ">", "log"]\n'
                     '[[run]]\nargv = ["make -j2"]\n')
    assert lines[0].startswith("p.toml: run[0].argv: looks like a shell command line in one "
                               "string, but argv runs no shell")
    assert "write shell = 'cd repo && make'" in lines[0]
    assert lines[1].startswith("p.toml: run[1].argv: contains the shell operator '>', "
                               "but argv runs no shell")
    assert lines[2].startswith("p.toml: run[2].argv: looks like a whole command line")
    assert 'split it: ["make", "-j2"]' in lines[2]


def test_argv_items_and_entry_shape():
    lines = problems('[[run]]\nargv = ["make", 2]\n'
                     '[[run]]\nargv = []\n'
                     '[[run]]\nargv = ["make"]\nshell = "make"\n'
                     '[[run]]\nname = "nothing"\n'
                     '[[run]]\nargv = ["x"]\ntimeout = 0\nenv = { "1BAD" = "x" }\n')
    assert lines[0] == "p.toml: run[0].argv[1]: expected a string (got 2)"
    assert any(line.startswith("p.toml: run[1].argv: must not be empty") for line in lines)
    assert any(line.startswith("p.toml: run[2]: has both argv and shell") for line in lines)
    assert any(line.startswith("p.toml: run[3]: needs argv, commands or shell") for line in lines)
    assert any(line.startswith("p.toml: run[4].timeout: must be positive") for line in lines)
    assert any(line.startswith("p.toml: run[4].env.1BAD: is not a valid environment variable")
               for line in lines)


def test_guards_that_mean_nothing_are_refused():
    lines = problems('[[run]]\nargv = ["make"]\ncreates = ""\n'
                     '[[run]]\nargv = ["make"]\ncreates = "/"\n'
                     '[[run]]\nargv = ["make"]\ncreates = "{drive}"\n'
                     '[[run]]\nargv = ["make"]\nunless = []\n'
                     '[[run]]\nargv = ["make"]\nunless = "test -f x"\n')
    assert lines[0].startswith("p.toml: run[0].creates: must not be empty (got '')")
    assert lines[1].startswith("p.toml: run[1].creates: always exists, so the command would "
                               "never run (got '/')")
    assert lines[2].startswith("p.toml: run[2].creates: always exists")
    assert lines[3].startswith("p.toml: run[3].unless: must not be empty")
    assert lines[4].startswith("p.toml: run[4].unless: must be a list of strings")
    assert 'unless = ["test", "-f", "x"]' in lines[4]


def test_shell_braces_follow_the_placeholder_rule():
    lines = problems('[[run]]\nshell = "echo ${HOME}"\n')
    assert lines[0].startswith("p.toml: run[0].shell: unknown placeholder {HOME}")
    assert "write $NAME for a variable, or ${{NAME}}" in lines[0]
    assert parse('[[run]]\nshell = "echo ${{HOME}} {python}"\n').run[0].shell


def test_pip_entry_problems_have_key_paths():
    lines = problems("""
        [pip]
        packages = [
          "-e ./repo",
          "./repo",
          { requirement = "a", path = "b" },
          { requirement = "a", editable = true },
          { path = "https://example.org/x.zip" },
          { requirement = "a", extras = ["dev"] },
        ]
    """)
    option = [line for line in lines if line.startswith("p.toml: pip.packages[0]: is a pip "
                                                         "option, not a requirement")]
    assert option and "{ path = \"{drive}/repo\", editable = true }" in option[0]
    assert any(line.startswith("p.toml: pip.packages[1]: is a folder, not a requirement")
               for line in lines)
    assert len(lines) == 6
    assert any(line.startswith("p.toml: pip.packages[2]: needs exactly one of requirement or "
                               "path") for line in lines)
    assert any(line.startswith("p.toml: pip.packages[3].editable: needs a path") for line in lines)
    assert any(line.startswith("p.toml: pip.packages[4].path: is a URL, not a folder")
               for line in lines)
    assert any(line.startswith("p.toml: pip.packages[5].extras: needs a path") for line in lines)
    # An unknown key in a table entry is named, with the key it was probably meant to be.
    assert problems('[pip]\npackages = [{ requirement = "a", no_dep = true }]\n') == [
        "p.toml: pip.packages[0].no_dep: unknown key; hint: did you mean 'no_deps'?"]


def test_scoped_index_problems():
    lines = problems("""
        [pip]
        packages = ["torch"]
        [[pip.indexes]]
        url = "http://download.pytorch.org/whl/cu121"
        packages = ["torch"]
        [[pip.indexes]]
        url = "https://a.example/simple"
        find_links = "https://b.example/wheels"
        packages = ["torch==2.4", "vision"]
        [[pip.indexes]]
        find_links = "{drive}/wheels"
        packages = []
    """)
    assert lines[0].startswith("p.toml: pip.indexes[0].url: plain http is refused")
    assert any(line.startswith("p.toml: pip.indexes[1].packages[0]: is not a package name")
               for line in lines)
    assert any(line.startswith("p.toml: pip.indexes[1]: needs exactly one of url or find_links")
               for line in lines)
    assert any(line.startswith("p.toml: pip.indexes[2].packages: must name at least one")
               for line in lines)
    twice = problems("""
        [pip]
        packages = ["torch"]
        [[pip.indexes]]
        url = "https://download.pytorch.org/whl/cu121"
        packages = ["torch"]
        [[pip.indexes]]
        find_links = "{drive}/more"
        packages = ["Torch"]
    """)
    assert twice == ["p.toml: pip.indexes[1].packages[0]: is already served by indexes[0] "
                     "(got 'Torch'); hint: a package can come from one scoped index only"]
