"""Hostile and faulty input, run as a user would: real processes, real files, loopback servers.

Each test plants a secret that looks like nothing (no token shape, so only the
``[secrets]`` table, a secret-looking name or a URL's userinfo/query can give it
away) and reads every output and every file written for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.httpserver import LoopbackServer, send_bytes

REPO = Path(__file__).resolve().parents[2]
SECRET = "plain-looking-value-42"
PASSWORD = "plainpass77xy"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120
        ) -> subprocess.CompletedProcess:
    full = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "bootstrap", *args], capture_output=True,
                          text=True, env=full, timeout=timeout)


def files_holding(folder: Path, *values: str) -> list[Path]:
    """Every file under ``folder`` that holds one of ``values``."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(v.encode() in data for v in values):
                found.append(path)
    return found


# -- [variables] and [[files]] content: the value goes where asked, never to output ---------

def test_restore_prints_no_secret_from_variables_or_file_content(tmp_path, isolated):
    target = tmp_path / "out" / "token.txt"
    rc = tmp_path / "out" / "rc"
    profile = tmp_path / "v.toml"
    profile.write_text(f"""
[secrets]
DATA_ACCESS = "DATA_ACCESS"
[variables]
TOK = "{{env:DATA_ACCESS}}"
URL = "https://me:{{env:DATA_ACCESS}}@host.example/x"
SERVICE_PASSWORD = "written-in-the-profile"
[[files]]
dest = "{target}"
content = "token={{env:DATA_ACCESS}}\\n"
[[files]]
dest = "{rc}"
append = "export DATA_ACCESS={{env:DATA_ACCESS}}"
[[run]]
argv = ["true", "{{env:DATA_ACCESS}}"]
once = true
[[run]]
name = "smoke"
argv = ["sh", "-c", "echo the value is $DATA_ACCESS"]
check = true
[[build]]
commands = [["true"], ["sh", "-c", "echo $0; exit 0", "{{env:DATA_ACCESS}}"]]
creates = "{rc}"
""")
    for args in (["--dry-run"], ["-v"], ["-v"]):
        done = cli("restore", str(profile), *args, env={"DATA_ACCESS": SECRET})
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
        assert "variable TOK = \"***\"" in done.stdout
        if args != ["--dry-run"]:
            assert "the value is ***" in done.stdout + done.stderr     # the check's output
        assert "variable SERVICE_PASSWORD = ***" in done.stdout   # a secret's name: masked
    assert target.read_text() == f"token={SECRET}\n"       # the file gets the value
    assert rc.read_text().splitlines() == [f"export DATA_ACCESS={SECRET}"]
    assert files_holding(isolated["store"], SECRET) == []
    assert files_holding(tmp_path / "vm-state", SECRET) == []
    status = cli("status", env={"DATA_ACCESS": SECRET})
    assert SECRET not in status.stdout + status.stderr


def test_the_report_repr_is_masked_but_its_variables_hold_the_value(tmp_path, monkeypatch):
    """The notebook's plain-text form of a returned Report is its repr: saved in .ipynb files."""
    import bootstrap

    monkeypatch.setenv("DATA_ACCESS", SECRET)
    profile = tmp_path / "r.toml"
    profile.write_text('[secrets]\nDATA_ACCESS = "DATA_ACCESS"\n'
                       '[variables]\nTOK = "{env:DATA_ACCESS}"\nAPI_KEY = "in-the-profile-1"\n')
    report = bootstrap.restore(str(profile))
    # pushed into the notebook: the point
    assert report.variables == {"TOK": SECRET, "API_KEY": "in-the-profile-1"}
    for text in (repr(report), str(report)):
        assert SECRET not in text and "in-the-profile-1" not in text
    assert SECRET not in report._repr_html_()


# -- trust on first use: the record holds no secret and still matches -----------------------

def test_first_use_record_keeps_no_token_and_matches_on_the_next_vm(tmp_path, isolated):
    body = b"weights" * 100
    def serve(req):
        send_bytes(req, body)

    with LoopbackServer(routes={f"/w.bin/{'hf_' + 'Ab1' * 10}": serve}) as srv:
        hf = "hf_" + "Ab1" * 10                    # a token shape in the path, too
        url = f"http://u:{PASSWORD}@127.0.0.1:{srv.port}/w.bin/{hf}?token={SECRET}&v=1"
        profile = tmp_path / "t.toml"
        dest = tmp_path / "w.bin"
        profile.write_text(f'name = "t"\n[[files]]\nurl = "{url}"\ndest = "{dest}"\n')
        first = cli("restore", str(profile))
        assert first.returncode == 0, first.stderr
        [record] = (isolated["store"] / "profiles" / "locks").glob("downloads.t*.json")
        saved = json.loads(record.read_text())["sha256"]
        assert list(saved) == [f"http://127.0.0.1:{srv.port}/w.bin/***?v=1"]
        assert files_holding(isolated["store"], SECRET, PASSWORD, hf) == []
        assert SECRET not in first.stdout + first.stderr and PASSWORD not in first.stdout
        # the next VM: the file is gone, the record must still be found and enforced
        dest.unlink()
        body = b"changed upstream"
        second = cli("restore", str(profile))
        assert second.returncode != 0
        assert "does not match" in second.stdout + second.stderr
        assert SECRET not in second.stdout + second.stderr


# -- import, export, pack: no secret value in any file written or any output -----------------

def _notebook(path: Path, *cells: str) -> Path:
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {"colab": {}},
                                "cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                                           "execution_count": None, "source": c}
                                          for c in cells]}))
    return path


def test_import_keeps_no_secret_of_a_notebook(tmp_path, isolated):
    values = ["hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345", PASSWORD, "glpatplain0123456789",
              "plaintok99887766", "sigvalue55443322", "plainwandbkey1234", "gitpass7766"]
    nb = _notebook(
        tmp_path / "leaky.ipynb",
        f'import os\nos.environ["HF_TOKEN"] = "{values[0]}"',
        f"!huggingface-cli login --token {values[0]}",
        f"!pip install --index-url https://alice:{PASSWORD}@pypi.example.org/simple torch",
        f"!pip install --extra-index-url https://__token__:{values[2]}@gitlab.example.com/"
        "api/v4/projects/1/packages/pypi/simple mypkg",
        f'!wget "https://files.example.org/x.bin?token={values[3]}" -O /content/x.bin',
        f"!wget -q https://files.example.org/y.bin?sig={values[4]} -O /content/y.bin",
        f"%env WANDB_API_KEY={values[5]}",
        f"!git clone https://oauth2:{values[6]}@gitlab.example.com/org/repo.git /content/repo",
        f'!pip install "https://files.example.org/pkg-1.0-py3-none-any.whl?token={values[3]}"',
        f"!pip install git+https://oauth2:{values[6]}@gitlab.example.com/org/repo.git",
        f'!curl -H "Authorization: Bearer {values[1]}" -o /content/m.bin https://h.example.org/m',
        f'!echo "machine h.example.org login u password {values[1]}" > ~/.netrc')
    done = cli("import", str(nb))
    assert done.returncode == 0, done.stderr
    assert not any(v in done.stdout + done.stderr for v in values)
    assert files_holding(isolated["store"], *values) == []
    text = (isolated["store"] / "profiles" / "leaky.toml").read_text()
    # the index stays, without its credential, and the output says why
    assert 'url = "https://pypi.example.org/simple"' in text
    assert "held a credential" in done.stdout


LEAKY_PROFILE = f"""
name = "leaky"
[secrets]
DATA_ACCESS = "DATA_ACCESS"
[env]
MY_API_KEY = "plainapikey55667788"
DERIVED = "{{env:DATA_ACCESS}}"
[pip]
packages = ["nb-demo-hello"]
index_url = "https://alice:{PASSWORD}@pypi.example.org/simple"
extra_index_urls = ["https://x.example.org/simple?token={SECRET}"]
[[pip.indexes]]
url = "https://bob:{PASSWORD}@cuda.example.org/simple"
packages = ["torch"]
[[files]]
url = "https://files.example.org/x.bin?token={SECRET}"
dest = "/tmp/x.bin"
"""


@pytest.mark.parametrize("target", ["repo2docker", "devcontainer", "ray"])
def test_export_writes_no_secret(tmp_path, target):
    profile = tmp_path / "leaky.toml"
    profile.write_text(LEAKY_PROFILE)
    done = cli("export", str(profile), "--to", target, str(tmp_path / "out"),
               env={"DATA_ACCESS": "plain-env-value-9"})
    assert done.returncode == 0, done.stderr
    values = [PASSWORD, SECRET, "plainapikey55667788", "plain-env-value-9"]
    assert files_holding(tmp_path / "out", *values) == []
    assert not any(v in done.stdout + done.stderr for v in values)
    # the index is still there, without its credential, and the output says why
    assert "https://pypi.example.org/simple" in "".join(
        p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "pip.index_url https://pypi.example.org/simple: its credential" in done.stdout


def test_pack_refuses_a_profile_holding_a_secret_and_writes_nothing(tmp_path):
    profile = tmp_path / "leaky.toml"
    profile.write_text(LEAKY_PROFILE)
    done = cli("pack", str(profile), str(tmp_path / "pack"))
    assert done.returncode != 0
    assert f"{profile}:" in done.stderr and "secret" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert not (tmp_path / "pack").exists()
    # a reference to a secret is fine: the profile is packed
    profile.write_text('name = "fine"\n[secrets]\nDATA_ACCESS = "DATA_ACCESS"\n'
                       '[pip]\nindex_url = "https://me:{env:DATA_ACCESS}@pypi.example.org/simple"\n'
                       '[[files]]\nurl = "https://h.example.org/x?token={env:DATA_ACCESS}"\n'
                       'dest = "/tmp/x"\n')
    done = cli("pack", str(profile), str(tmp_path / "pack"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pack" / "profiles" / "fine.toml").is_file()


# -- hostile profile text for the newer keys: a ProfileError naming file:key, with a hint ----

@pytest.mark.parametrize("text, key", [
    ('[[files]]\ncontent = "x"\ndest = "/tmp/a\\u0000b"\n', "files[0].dest"),
    ('[[run]]\nargv = ["ls", "a\\u0000b"]\n', "run[0].argv[1]"),
    ('[[build]]\nargv = ["true"]\ntimeout = nan\n', "build[0].timeout"),
    ('[[run]]\ncommands = [["true"]]\ntimeout = -inf\n', "run[0].timeout"),
    ('[[files]]\nurl = "https://h.example/x"\ndest = "/tmp/x"\nmax_size = nan\n',
     "files[0].max_size"),
    ('[[files]]\nurl = "https://h.example/x"\ndest = "/tmp/x"\nmax_size = "lots"\n',
     "files[0].max_size"),
    ('[[files]]\ncontent = "x"\ndest = "/tmp/x"\nmode = 0o7777777\n', "files[0].mode"),
    ('[[files]]\ncontent = "x"\ndest = "/tmp/x"\nwhen = "gpu and and"\n', "files[0].when"),
    ('[env]\nA = "{env:X:-{env:Y:-{env:Z}}}"\n', "env.A"),
    ('[env]\nA = "{cpus/0}"\n', "env.A"),
    ('[variables]\nprint = "x"\n', "variables.print"),
    ('[variables]\n__builtins__ = "x"\n', "variables.__builtins__"),
    ('[variables]\n"1abc" = "x"\n', "variables"),
    ('[venv]\npath = ""\n', "venv.path"),
    ('[venv]\npath = "/"\n', "venv.path"),
    ('[venv]\npath = "{store}"\n', "venv.path"),
])
def test_hostile_text_for_new_keys_is_a_profile_error(tmp_path, text, key):
    profile = tmp_path / "bad.toml"
    profile.write_text(text)
    for args in (["validate", str(profile)], ["restore", str(profile), "--dry-run"]):
        done = cli(*args, timeout=30)
        assert done.returncode == 3, done.stderr
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        assert f"bad.toml: {key}" in done.stderr and "hint:" in done.stderr


def test_a_secret_in_a_shell_script_is_read_from_the_environment_not_pasted(tmp_path,
                                                                           started):
    """A quote or $ in the value stays data, and the value is in no argv (the process list)."""
    from bootstrap import restore

    tricky = SECRET + "'; touch INJECTED; echo '$HOME"
    out = tmp_path / "out"
    profile = tmp_path / "s.toml"
    profile.write_text(f'[secrets]\nDB_PASS = "DB_PASS"\n[[run]]\ncwd = "{tmp_path}"\n'
                       f'shell = "printf %s {{env:DB_PASS}} > {out}; '
                       f'printf %s \\"{{env:DB_PASS}}\\" >> {out}"\n')
    os.environ["DB_PASS"] = tricky
    try:
        restore(str(profile))
    finally:
        del os.environ["DB_PASS"]
    assert out.read_text() == tricky * 2
    assert not (tmp_path / "INJECTED").exists()
    assert not any(SECRET in word for argv in started for word in map(str, argv))


def test_a_venv_at_the_root_or_the_store_is_refused_not_replaced(tmp_path, isolated):
    isolated["store"].mkdir(parents=True, exist_ok=True)
    (isolated["store"] / "keep.txt").write_text("mine")
    for path in ("/", str(isolated["store"])):   # reached through a placeholder
        profile = tmp_path / "v.toml"
        profile.write_text('[venv]\npath = "{env:SOMEWHERE}"\n')
        done = cli("restore", str(profile), env={"SOMEWHERE": path}, timeout=60)
        assert done.returncode != 0
        assert "is not a virtual environment" in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
    assert (isolated["store"] / "keep.txt").read_text() == "mine"


# -- nothing written outside its destination ---------------------------------------------

def _tar(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    """A .tar.gz of (kind, name, data or link target) members: "file", "symlink", "hardlink"."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tf:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = str(data)
                tf.addfile(info)
    return path


def _zip_with_link(path: Path, name: str, target: str) -> Path:
    import stat
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok.txt", "fine")
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return path


def test_archives_from_drive_never_write_outside_their_folder(tmp_path, isolated):
    drive, outside = isolated["drive"], tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("untouched")
    archives = [
        _tar(drive / "dotdot.tar.gz", [("file", "ok.txt", b"x"),
                                       ("file", "../../escaped.txt", b"pwned")]),
        _tar(drive / "abs.tar.gz", [("file", f"{outside}/abs.txt", b"pwned")]),
        _tar(drive / "dirlink.tar.gz", [("symlink", "link", str(outside)),
                                        ("file", "link/planted.txt", b"pwned")]),
        _tar(drive / "filelink.tar.gz", [("file", "a.txt", b"x"),
                                         ("symlink", "cfg", f"{outside}/target.txt")]),
        _tar(drive / "hard.tar.gz", [("file", "a.txt", b"x"), ("hardlink", "b", "/etc/passwd")]),
        _zip_with_link(drive / "link.zip", "cfg", f"{outside}/target.txt"),
    ]
    for archive in archives:
        out = tmp_path / "unpacked" / archive.name.split(".")[0]
        profile = tmp_path / "a.toml"
        # after the archive, a write into its folder: must not follow a planted link
        profile.write_text(f'[[files]]\nsource = "{{drive}}/{archive.name}"\ndest = "{out}"\n'
                           f'unpack = true\n[[files]]\ndest = "{out}/cfg"\ncontent = "pwned"\n')
        done = cli("restore", str(profile), timeout=60)
        assert done.returncode != 0, archive.name
        assert "Traceback" not in done.stderr
        assert not out.exists() or not any(p.is_symlink() for p in out.rglob("*"))
    assert (outside / "target.txt").read_text() == "untouched"
    assert sorted(p.name for p in outside.iterdir()) == ["target.txt"]
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_link_planted_in_a_clone_is_not_written_through(tmp_path):
    from tests.support.gitrepo import GitRepo

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "authorized_keys").write_text("mine\n")
    origin = GitRepo.create(tmp_path / "origin")
    (origin.path / "config.yaml").symlink_to(outside / "authorized_keys")
    (origin.path / "conf.d").symlink_to(outside)
    origin.commit({"README": "hi"}, "links")
    checkout = tmp_path / "checkout"
    for dest, how in ((checkout / "config.yaml", 'append = "ssh-rsa attacker"'),
                      (checkout / "conf.d" / "new.txt", 'content = "pwned"')):
        profile = tmp_path / "g.toml"
        profile.write_text(f'[[git]]\nurl = "{origin.url}"\ndest = "{checkout}"\n'
                           f'[[files]]\ndest = "{dest}"\n{how}\n')
        done = cli("restore", str(profile), timeout=60)
        assert done.returncode != 0
        assert "through a link inside it" in done.stdout + done.stderr
        assert f"{profile.name}: files[0].dest" in done.stdout + done.stderr
    assert (outside / "authorized_keys").read_text() == "mine\n"
    assert sorted(p.name for p in outside.iterdir()) == ["authorized_keys"]


def test_the_users_own_links_are_followed_and_kept(tmp_path):
    """~/.bashrc -> a dotfiles clone: the dotfiles file gets the line, the link stays."""
    dotfiles, home = tmp_path / "dotfiles", tmp_path / "home"
    dotfiles.mkdir()
    home.mkdir()
    (dotfiles / "bashrc").write_text("alias ll='ls -l'\n")
    (dotfiles / "cfg.yaml").write_text("old: 1\n")
    (home / ".bashrc").symlink_to("../dotfiles/bashrc")
    (home / "cfg.yaml").symlink_to(dotfiles / "cfg.yaml")
    profile = tmp_path / "l.toml"
    profile.write_text(f'[[files]]\ndest = "{home}/.bashrc"\nappend = "export X=1"\n'
                       f'[[files]]\ndest = "{home}/cfg.yaml"\ncontent = "new: 2\\n"\n')
    done = cli("restore", str(profile), timeout=60)
    assert done.returncode == 0, done.stderr
    assert (home / ".bashrc").is_symlink() and (home / "cfg.yaml").is_symlink()
    assert (dotfiles / "bashrc").read_text() == "alias ll='ls -l'\nexport X=1\n"
    assert (dotfiles / "cfg.yaml").read_text() == "new: 2\n"
    again = cli("restore", str(profile), timeout=60)
    assert again.returncode == 0 and "2 files in place" in again.stdout


# -- the lock and the wheel store: an index's credential is not written into them ----------

@pytest.mark.parametrize("how", ["literal", "reference"])
def test_index_credentials_stay_out_of_the_lock_store_and_output(tmp_path, isolated, wheelhouse,
                                                                 fresh_venv, how):
    from tests.support.index import simple_index
    from tests.support.venvs import installed

    password = "{env:INDEX_PASS}" if how == "reference" else PASSWORD
    with simple_index(wheelhouse) as index:
        url = f"http://alice:{password}@127.0.0.1:{index.port}/simple/"
        profile = tmp_path / "idx.toml"
        profile.write_text(f'[secrets]\nINDEX_PASS = "INDEX_PASS"\n'
                           f'[pip]\npackages = ["beta"]\nindex_url = "{url}"\n')
        done = cli("restore", str(profile), "--python", str(fresh_venv), "-v",
                   env={"INDEX_PASS": PASSWORD}, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    assert installed(fresh_venv) == {"alpha": "2.0", "beta": "1.0"}
    assert PASSWORD not in done.stdout + done.stderr
    assert files_holding(isolated["store"], PASSWORD) == []
    assert files_holding(tmp_path / "vm-state", PASSWORD) == []
    assert files_holding(tmp_path / "local-wheels", PASSWORD) == []


def test_signed_wheel_links_of_an_index_are_not_kept_in_the_lock(tmp_path, isolated, wheelhouse,
                                                                 fresh_venv):
    """An index (an artifact registry) may link its files with a signature in the query."""
    import hashlib
    import html

    from tests.support.venvs import installed, make_venv

    wheel = next(wheelhouse.glob("delta-0.5-*.whl"))
    data = wheel.read_bytes()
    link = (f'<a href="/files/{html.escape(wheel.name)}?token={SECRET}&amp;X-Amz-Signature='
            f'{SECRET}#sha256={hashlib.sha256(data).hexdigest()}">{html.escape(wheel.name)}</a>')
    page = f"<!DOCTYPE html><html><body>{link}</body></html>".encode()
    routes = {"/simple/delta/": lambda req: send_bytes(req, page, honor_range=False,
                                                       content_type="text/html"),
              f"/files/{wheel.name}": lambda req: send_bytes(req, data)}
    with LoopbackServer(routes=routes) as index:
        profile = tmp_path / "signed.toml"
        profile.write_text(f'[pip]\npackages = ["delta"]\nindex_url = "{index.url}/simple/"\n')
        done = cli("restore", str(profile), "--python", str(fresh_venv), "-v", timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert files_holding(isolated["store"], SECRET) == []
    [lock] = (isolated["store"] / "profiles" / "locks").glob("pylock.*.toml")
    assert f"/files/{wheel.name}" in lock.read_text()
    # the next VM (a fresh Python, the index gone) installs from the lock and the store
    other = make_venv(tmp_path / "vm2")
    again = cli("restore", str(profile), "--python", str(other), timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert installed(other) == {"delta": "0.5"}


# -- no lost update --------------------------------------------------------------------

def test_an_import_that_races_another_writer_overwrites_nothing(tmp_path, isolated, monkeypatch):
    """Another VM saves the profile while the import writes it: both versions are kept."""
    from bootstrap import fileio, import_notebook, store
    from bootstrap.errors import StoreError

    nb = _notebook(tmp_path / "race.ipynb", "!pip install -q requests")
    target = isolated["store"] / "profiles" / "race.toml"
    target.parent.mkdir(parents=True)
    target.write_text('name = "race"\n')
    real = store.history_path
    theirs = 'name = "race"\n[env]\nFROM_THE_OTHER_VM = "1"\n'

    def history_path_while_another_vm_saves(path):
        if path == target and "FROM_THE_OTHER_VM" not in target.read_text():
            fileio.write_atomic(target, theirs.encode())
        return real(path)

    monkeypatch.setattr(store, "history_path", history_path_while_another_vm_saves)
    with pytest.raises(StoreError) as caught:
        import_notebook(str(nb))
    assert target.read_text() == theirs                       # the other VM's save stands
    kept = [p.read_text() for p in (target.parent / "history").glob("race*.toml")]
    assert any("requests" in text for text in kept)           # and the import is in history
    assert "nothing was overwritten" in str(caught.value)


@pytest.mark.parametrize("entry, says", [
    ('source = "/dev/zero"\ndest = "{out}/zero.bin"', "/dev/zero is not a regular file"),
    ('source = "/dev/zero"\ndest = "{out}/z"\nunpack = true', "/dev/zero is not a regular file"),
    ('content = "x"\ndest = "~nosuchuser-xyz/x"', "files[0].dest: names a home folder"),
    ('content = "x"\ndest = "/"', "/ is a folder, not a file"),
])
def test_odd_sources_and_dests_fail_cleanly_and_quickly(tmp_path, entry, says):
    out = tmp_path / "out"
    profile = tmp_path / "odd.toml"
    profile.write_text("[[files]]\n" + entry.replace("{out}", str(out)) + "\n")
    done = cli("restore", str(profile), timeout=30)
    assert done.returncode != 0
    assert says in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_two_vms_recording_first_use_digests_at_once_lose_neither(tmp_path, isolated,
                                                                  monkeypatch):
    import bootstrap
    from bootstrap import fileio

    real = fileio.read_bytes
    other = {"comment": "", "sha256": {"https://other.example/y.bin": "0" * 64}}

    def read_while_another_vm_records(path):
        data = real(path)
        if path.name.startswith("downloads.") and b"other.example" not in (data or b""):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(other))        # the other VM's record lands now
        return data

    monkeypatch.setattr(fileio, "read_bytes", read_while_another_vm_records)
    with LoopbackServer(routes={"/x.bin": lambda req: send_bytes(req, b"x" * 10)}) as srv:
        url = f"{srv.url}/x.bin"
        profile = tmp_path / "two.toml"
        profile.write_text(f'[[files]]\nurl = "{url}"\ndest = "{tmp_path}/x.bin"\n')
        assert bootstrap.restore(str(profile)).ok
    [record] = (isolated["store"] / "profiles" / "locks").glob("downloads.two*.json")
    assert set(json.loads(record.read_text())["sha256"]) == {"https://other.example/y.bin", url}
