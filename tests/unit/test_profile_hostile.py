"""Hostile profile text: only ProfileError, quickly and in bounded memory; values checked
again after their placeholders are expanded; loopback by address; a deadline for URLs."""

from __future__ import annotations

import resource
import time

import pytest

from bootstrap import profile as profile_mod
from bootstrap.errors import ProfileError
from bootstrap.profile import MAX_PROFILE_BYTES, damage, is_loopback_url, load, parse
from tests.support.fakes import step_context


def refused(text: str | bytes, match: str | None = None) -> ProfileError:
    start = time.monotonic()
    with pytest.raises(ProfileError, match=match) as caught:
        parse(text, source="h.toml")
    str(caught.value)   # renders without error
    assert time.monotonic() - start < 2.0   # "within a second", with room for a busy machine
    return caught.value


def test_a_5000_digit_integer_is_a_profile_error():
    error = refused("[setup]\ntimeout = " + "9" * 5000 + "\n", "cannot be read")
    assert "9" * 100 not in str(error)
    assert damage(("x = " + "1" * 5000).encode()) is not None


def test_a_dotted_key_of_40000_parts_is_refused_in_bounded_memory():
    text = "a" + ".a" * 40_000 + " = 1\n"
    assert len(text) < MAX_PROFILE_BYTES
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused(text, "dotted key nested deeper")
    refused("[" + ".".join(['"k"'] * 30_000) + "]\n", "dotted key nested deeper")
    refused("x = { " + ".".join(["b"] * 30_000) + " = 1 }\n", "dotted key nested deeper")
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200_000, grown_kib
    # ordinary dotted keys and dotted values stay fine
    assert parse('name = "v"\ncaptured.gpu = "T4"\n[env]\nV = "1.2.3.4.5.6.7.8.9.10"\n',
                 source="ok.toml").captured.gpu == "T4"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
def test_non_finite_numbers_are_refused(value):
    refused(f"[setup]\nnotebook = \"s.ipynb\"\ntimeout = {value}\n", "finite")
    refused(f"[[run]]\nargv = [\"true\"]\ntimeout = {value}\n", "finite")
    refused(f"[setup]\nnotebook = \"s.ipynb\"\nparameters = {{ x = {value} }}\n", "nan or inf")


@pytest.mark.parametrize("text", [
    "[" * 5000, "a = " + "[" * 5000 + "]" * 5000, b"\xff\xfe\x00", "x = \"\\ud800\"",
    "a = 1\na = 2", "= 1", "[pip]\npackages = 3", "version = 99999999999999999999",
    "[gpu]\nmin_memory_gib = 1e400", "\x00", "a = 1979-05-27T07:32:00Z\n[env]\nX = 1e9999",
    "k" * 200_000 + " = 1", "[[files]]\n" * 20_000, "[[run]]\nargv = 1\n" * 10_000,
    "a = '" + "x" * 250_000 + "'",
])
def test_odd_inputs_give_profile_errors_only(text):
    refused(text)


def test_a_profile_with_thousands_of_problems_lists_some():
    error = refused("[[files]]\n" * 5000)
    assert len(error.problems) == 5000
    assert len(error.lines()) < 60 and "... and 4950 more" in str(error)


def test_a_profile_file_is_parsed_once(tmp_path, monkeypatch):
    path = tmp_path / "once.toml"
    path.write_text('name = "once"\n[env]\nA = "1"\n')
    calls = []
    reader = profile_mod.toml_reader()
    real = reader.loads
    monkeypatch.setattr(reader, "loads", lambda text: calls.append(1) or real(text))
    assert load(str(path)).name == "once" and len(calls) == 1


def test_loopback_means_a_loopback_address():
    for url in ("http://127.0.0.1:8000/simple", "http://127.5.6.7/simple",
                "http://[::1]:9/simple", "http://localhost/simple"):
        assert is_loopback_url(url), url
    for url in ("http://127.0.0.1.attacker.example/simple", "http://127.attacker.example/",
                "http://localhost.attacker.example/", "http://10.0.0.1/", "http://[::2]/"):
        assert not is_loopback_url(url), url
    refused('[pip]\npackages = ["a"]\nindex_url = "http://127.0.0.1.attacker.example/simple"\n',
            "plain http is refused")


def test_placeholders_are_checked_again_once_expanded(monkeypatch):
    monkeypatch.setenv("VER", "1.0\n--index-url=http://evil.example/simple")
    monkeypatch.setenv("PIN", "a.whl --index-url=http://evil.example/simple")
    monkeypatch.setenv("MIRROR", "http://evil.example/simple")
    ctx = step_context('[pip]\npackages = ["alpha @ https://h.example/{env:PIN}"]\n'
                       'constraints = ["beta @ https://h.example/b-{env:VER}.whl"]\n'
                       'index_url = "{env:MIRROR}"\n')
    with pytest.raises(ProfileError, match=r"pip.constraints\[0\]: contains a line break once "
                                           "its placeholders are expanded"):
        ctx.expand("beta @ https://h.example/b-{env:VER}.whl", "pip.constraints[0]")
    with pytest.raises(ProfileError, match=r"pip.packages\[0\]: is a pip option"):
        ctx.expand("alpha @ https://h.example/{env:PIN}", "pip.packages[0]")
    with pytest.raises(ProfileError, match=r"pip.index_url: plain http is refused"):
        ctx.expand("{env:MIRROR}", "pip.index_url")
    # what the rule allows passes, braces from a value are literal
    monkeypatch.setenv("JSON", '{"a": 1}')
    assert ctx.expand("echo '{env:JSON}'", "run[0].shell") == "echo '{\"a\": 1}'"


def test_a_pip_step_with_an_injected_constraint_stops_with_a_profile_error(monkeypatch,
                                                                           tmp_path):
    import bootstrap

    monkeypatch.setenv("VER", "1.0\n--index-url=http://evil.example/simple")
    path = tmp_path / "inj.toml"
    path.write_text('[pip]\npackages = ["alpha @ https://h.example/a-{env:VER}.whl"]\n')
    with pytest.raises(ProfileError, match=r"packages\[0\]: contains a line break"):
        bootstrap.restore(str(path))


def test_a_profile_url_has_an_overall_deadline(tmp_path, monkeypatch):
    from tests.support.httpserver import LoopbackServer, self_signed_cert

    pair = self_signed_cert(tmp_path)
    if pair is None:
        pytest.skip("openssl is not installed")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pair[0]))
    monkeypatch.setattr(profile_mod, "PROFILE_DEADLINE_S", 1.5)

    def trickle(req):
        req.send_response(200)
        req.send_header("Content-Length", "1000")
        req.end_headers()
        for _ in range(1000):
            req.wfile.write(b"#")
            req.wfile.flush()
            if server.stopping.wait(0.3):
                return

    with LoopbackServer(routes={"/slow.toml": trickle}, tls=pair) as server:
        start = time.monotonic()
        with pytest.raises(ProfileError, match="did not arrive within 1.5 s"):
            profile_mod.fetch_url(server.url + "/slow.toml", deadline=1.5)
        assert time.monotonic() - start < 4
