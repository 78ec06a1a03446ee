"""Profile format v1: parsing, validation messages, dump round trip, placeholders, lookup."""

from __future__ import annotations

import hashlib
import textwrap

import pytest

from bootstrap.errors import ProfileError
from bootstrap.profile import (
    MAX_PROFILE_BYTES,
    Pip,
    builtin_names,
    dump,
    expand,
    load,
    parse,
)


def errors_of(text: str, source: str = "vision.toml") -> str:
    with pytest.raises(ProfileError) as info:
        parse(textwrap.dedent(text), source=source)
    return str(info.value)


def test_full_profile_parses_into_typed_model():
    profile = parse(textwrap.dedent('''
        version = 1
        name = "vision"
        [gpu]
        required = true
        min_memory_gib = 15
        models = ["T4", "L4"]
        [drive]
        mount = true
        [apt]
        packages = ["ffmpeg"]
        [pip]
        packages = ["transformers==4.46.3", "timm>=1.0", "x @ https://example.org/x-1.0-py3-none-any.whl"]
        index_url = "https://pypi.org/simple"
        [env]
        HF_HOME = "{drive}/hf-cache"
        [secrets]
        HF_TOKEN = "HF_TOKEN"
        [[files]]
        url = "https://example.org/weights.pt"
        sha256 = "''' + "a" * 64 + '''"
        dest = "/content/weights/model.pt"
        [[git]]
        url = "https://github.com/org/repo"
        ref = "v1.2"
        dest = "/content/repo"
        [workdir]
        path = "projects/vision"
        [setup]
        notebook = "{drive}/projects/vision/setup.ipynb"
        parameters = { epochs = 3 }
        [platforms.kaggle.workdir]
        path = "/kaggle/working"
    '''), source="vision.toml")
    assert profile.gpu is not None and profile.gpu.min_memory_gib == 15.0
    assert profile.gpu.models == ["T4", "L4"]
    assert profile.pip == Pip(packages=["transformers==4.46.3", "timm>=1.0",
                                        "x @ https://example.org/x-1.0-py3-none-any.whl"],
                              index_url="https://pypi.org/simple")
    assert profile.files[0].dest == "/content/weights/model.pt"
    assert profile.setup is not None and profile.setup.parameters == {"epochs": 3}
    assert profile.sections() == ["gpu", "drive", "apt", "pip", "env", "secrets", "files", "git",
                                  "workdir", "setup"]
    assert profile.for_platform("kaggle").workdir.path == "/kaggle/working"
    assert profile.for_platform("colab").workdir.path == "projects/vision"
    # dump and parse again: the same profile
    assert parse(dump(profile), source="again.toml") == profile


def test_wrong_type_message():
    text = errors_of('''
        [gpu]
        required = "yes"
    ''')
    assert text == ("error: invalid profile vision.toml\n"
                    "  - vision.toml: gpu.required: expected true or false (got 'yes')\n"
                    "  hint: see the profile format: `bootstrap help profile`")


def test_unknown_key_gets_did_you_mean():
    text = errors_of('''
        [pip]
        pakages = ["numpy"]
    ''')
    assert text == ("error: invalid profile vision.toml\n"
                    "  - vision.toml: pip.pakages: unknown key; hint: did you mean 'packages'?\n"
                    "  hint: see the profile format: `bootstrap help profile`")


def test_unknown_section_lists_known_keys_when_nothing_is_close():
    text = errors_of('''
        [zzz]
        a = 1
    ''')
    assert ("vision.toml: zzz: unknown key; hint: known keys: apt, build, captured, description, "
            "drive, env, files, git, gpu, name, pip, platforms, run, secrets, setup, variables, "
            "venv, version, workdir") in text


def test_bad_requirement_message():
    text = errors_of('''
        [pip]
        packages = ["numpy", "torch=>1"]
    ''')
    assert text.splitlines()[0] == "error: invalid profile vision.toml"
    line = text.splitlines()[1]
    assert line.startswith("  - vision.toml: pip.packages[1]: is not a PEP 508 requirement "
                           "(got 'torch=>1'); hint: write it like 'name', 'name==1.2' or "
                           "'name>=1,<2' (")


def test_several_mistakes_reported_at_once():
    text = errors_of('''
        version = 2
        [pip]
        packages = ["ok", "-r requirements.txt"]
        [env]
        "1BAD" = "x"
        GOOD = "{nope}"
        [workdir]
        create = true
    ''')
    assert text == (
        "error: vision.toml has 5 problems\n"
        "  - vision.toml: pip.packages[1]: is a pip option, not a requirement "
        "(got '-r requirements.txt'); hint: list only requirements; per-package options go "
        "in a table entry, e.g. { requirement = \"name\", no_deps = true } or "
        "{ path = \"{drive}/repo\", editable = true }; use [pip] index_url, find_links, "
        "indexes for indexes\n"
        "  - vision.toml: env.GOOD: unknown placeholder {nope} (got '{nope}'); hint: use "
        "{drive}, {store}, {home}, {python}, {here}, {cpus}, {env:NAME} or {env:NAME:-default}\n"
        "  - vision.toml: workdir.path: missing required key; hint: e.g. path = "
        "\"projects/vision\"\n"
        "  - vision.toml: version: unsupported format version (this release reads 1) (got 2); "
        "hint: upgrade notebook-bootstrap or write version = 1\n"
        "  - vision.toml: env.1BAD: is not a valid environment variable name (got '1BAD'); "
        "hint: use letters, digits and underscores, not starting with a digit\n"
        "  hint: see the profile format: `bootstrap help profile`")


@pytest.mark.parametrize("entry, what", [
    ("--index-url=https://x.org/simple", "is a pip option, not a requirement"),
    ("-e .", "is a pip option, not a requirement"),
    ("-r file", "is a pip option, not a requirement"),
    ("torch --extra-index-url x", "is a pip option, not a requirement"),
    ("numpy\nscipy", "contains a line break"),
    ("name @ file:///tmp/x.whl", "direct URL must use https"),
    ("name @ http://example.org/x.whl", "direct URL must use https"),
    ("not a requirement!", "is not a PEP 508 requirement"),
])
def test_bad_pip_entries_are_refused(entry, what):
    text = errors_of(f"[pip]\npackages = [{entry!r}]\n".replace("'", '"').replace("\n\"", "\\n\"")
                     if "\n" not in entry else
                     '[pip]\npackages = ["numpy\\nscipy"]\n')
    assert f"vision.toml: pip.packages[0]: {what}" in text


def test_https_direct_urls_are_allowed():
    profile = parse('[pip]\npackages = ["x @ https://example.org/x-1.0-py3-none-any.whl", '
                    '"y @ git+https://github.com/o/y@v1"]\n')
    assert len(profile.pip.packages) == 2


@pytest.mark.parametrize("name", ["-oAPT::Update::Pre-Invoke::=x", "vim;id", "../x", "Vim"])
def test_bad_apt_names_are_refused(name):
    text = errors_of(f'[apt]\npackages = ["ffmpeg", {name!r}]\n'.replace("'", '"'))
    assert f"vision.toml: apt.packages[1]: is not a Debian package name (got {name!r})" in text


def test_invalid_toml_names_line_and_column():
    text = errors_of('''name = "x"
[pip]
packages = ["a" "b"]
''')
    assert text.splitlines()[1].startswith("  - vision.toml: line 3, column 17: is not valid TOML")
    assert "hint: check quotes, brackets and '=' on that line" in text


def test_huge_profile_is_refused():
    text = errors_of("# " + "x" * MAX_PROFILE_BYTES + "\n")
    assert f"over the {MAX_PROFILE_BYTES} byte limit for a profile" in text


def test_deeply_nested_toml_is_a_profile_error_not_a_crash():
    text = errors_of("a = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested deeper than" in text
    text = errors_of("[setup]\nnotebook='n'\nparameters = " + "{a=" * 40 + "1" + "}" * 40 + "\n")
    assert "nested deeper than" in text


def test_absurd_documents_are_profile_errors():
    assert "is not UTF-8 text" in str(pytest.raises(ProfileError, parse, b"\xff\xfe\x00").value)
    text = errors_of("[[pip]]\npackages=[]\n")
    assert "vision.toml: pip: expected a table" in text


def test_files_entry_rules():
    text = errors_of('''
        [[files]]
        dest = "/x"
        [[files]]
        dest = "/y"
        url = "http://example.org/a"
        [[files]]
        dest = "/z"
        url = "https://example.org/a"
        sha256 = "nothex"
    ''')
    assert "vision.toml: files[0]: needs one of url, store, source, content or append" in text
    assert "vision.toml: files[1].url: plain http is refused" in text  # only loopback may
    assert "files[1].sha256" not in text  # without it: trust on first use
    assert "vision.toml: files[2].sha256: is not a sha256 hex digest" in text


def test_platform_overrides_are_validated():
    text = errors_of('''
        [platforms.kaggle.pip]
        packages = ["-e ."]
        [platforms.sagemaker]
        env = {}
    ''')
    assert "vision.toml: platforms.kaggle.pip.packages[0]: is a pip option" in text
    assert "vision.toml: platforms.sagemaker: unknown platform" in text


def test_placeholders_expand_at_restore_time():
    values = {"drive": "/d", "store": "/s", "home": "/h", "python": "/p", "here": "/x"}
    assert expand("{drive}/a:{env:FOO}:{{lit}}", values, {"FOO": "bar"}) == "/d/a:bar:{lit}"
    with pytest.raises(ProfileError, match="uses {env:MISSING} but MISSING is not set"):
        expand("{env:MISSING}", values, {})


def test_lookup_by_name_store_first_then_shipped(tmp_path):
    assert "demo" in builtin_names()
    shipped = load("demo")
    assert shipped.name == "demo" and shipped.origin.endswith("demo.toml")
    store_profiles = tmp_path / "profiles"
    store_profiles.mkdir()
    (store_profiles / "demo.toml").write_text('name = "mine"\n[env]\nA = "1"\n')
    assert load("demo", profiles_dir=store_profiles).name == "mine"
    with pytest.raises(ProfileError) as info:
        load("nosuch", profiles_dir=store_profiles)
    assert "nosuch: no profile with this name" in str(info.value)
    assert "%save_env nosuch" in str(info.value)


def test_lookup_by_path(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[env]\nA = "1"\n')
    profile = load(str(path))
    assert profile.name == "p" and profile.env == {"A": "1"}
    with pytest.raises(ProfileError, match="no such profile file"):
        load(str(tmp_path / "missing.toml"))
    with pytest.raises(ProfileError) as info:
        load(str(tmp_path))
    assert info.value.lines() == [f"error: {tmp_path}: is a folder, not a profile file",
                                  "  hint: give a .toml file in it (p.toml)"]
    (tmp_path / "new.toml").write_text("")
    with pytest.raises(ProfileError) as info:
        load(str(tmp_path / "new.toml"))
    assert "cut off" not in str(info.value) and "new.toml: is empty" in str(info.value)


def test_a_missing_name_says_so_once():
    with pytest.raises(ProfileError) as info:
        load("nosuch")
    lines = info.value.lines()
    assert lines[0] == "error: nosuch: no profile with this name"
    assert len(lines) == 2 and lines[1].startswith("  hint: searched ")
    assert "invalid profile" not in str(info.value)


def test_http_profile_url_refused():
    with pytest.raises(ProfileError, match="fetched over https only"):
        load("http://example.org/vision.toml")


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    from tests.support.httpserver import LoopbackServer, self_signed_cert

    (tmp_path / "tls").mkdir()
    pair = self_signed_cert(tmp_path / "tls")
    if pair is None:
        pytest.skip("openssl is not installed")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pair[0]))
    root = tmp_path / "site"
    root.mkdir()
    (root / "vision.toml").write_text('name = "vision"\n[env]\nA = "1"\n')
    (root / "big.toml").write_text("#" * (MAX_PROFILE_BYTES + 10))
    with LoopbackServer(root=root, tls=pair) as server:
        yield server, root


def test_https_url_with_pin(tls_server):
    server, root = tls_server
    url = server.url_for("/vision.toml")
    assert url.startswith("https://127.0.0.1:")
    digest = hashlib.sha256((root / "vision.toml").read_bytes()).hexdigest()
    profile = load(f"{url}#sha256={digest}")
    assert profile.name == "vision" and profile.origin == f"{url}#sha256={digest}"
    with pytest.raises(ProfileError) as info:
        load(f"{url}#sha256={'0' * 64}")
    assert f"content has sha256 {digest}, not the pinned {'0' * 64}" in str(info.value)
    with pytest.raises(ProfileError, match="over the .* byte limit"):
        load(server.url_for("/big.toml"))
    with pytest.raises(ProfileError, match="server answered HTTP 404"):
        load(server.url_for("/missing.toml"))


def test_file_downloads_need_https():
    text = errors_of('''
        [[files]]
        dest = "/x"
        url = "file:///etc/passwd"
        sha256 = "''' + "a" * 64 + '''"
    ''')
    assert "vision.toml: files[0].url: downloads need an https URL (got 'file:///etc/passwd')" \
        in text


def test_pip_entries_a_bare_vcs_url_and_loopback_http_urls():
    from bootstrap.profile import check_requirement

    assert check_requirement("git+https://github.com/org/repo") is None
    assert check_requirement("git+https://github.com/org/repo@v1.2#subdirectory=python") is None
    assert check_requirement("git+http://127.0.0.1:8000/repo.git") is None  # a local mirror
    assert check_requirement("zeta @ http://127.0.0.1:8000/zeta-1.0.tar.gz") is None
    assert check_requirement("zeta @ http://example.org/zeta-1.0.tar.gz")[0] == \
        "direct URL must use https"
    assert check_requirement("git+ssh://git@github.com/org/repo")[0] == \
        "is not a PEP 508 requirement"


def test_pip_requirements_files_and_no_build_isolation_validate():
    from bootstrap.profile import parse

    profile = parse('[pip]\nrequirements = ["{drive}/proj/requirements.txt"]\n'
                    'packages = [{ requirement = "flash-attn", no_build_isolation = true }]\n')
    assert profile.pip.requirements == ["{drive}/proj/requirements.txt"]
    assert profile.pip.packages[0].no_build_isolation is True
