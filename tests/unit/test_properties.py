"""Property tests: only ProfileError escapes the parser; no known secret shape survives masking.

Bounded (examples and time per example) so they add seconds to the suite.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bootstrap import redact
from bootstrap.errors import ProfileError
from bootstrap.profile import parse

BOUNDED = settings(max_examples=150, deadline=2000, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])

# -- the parser ------------------------------------------------------------------------

KEYS = ["version", "name", "gpu", "pip", "packages", "apt", "env", "secrets", "files", "url",
        "sha256", "dest", "run", "argv", "shell", "timeout", "setup", "notebook", "parameters",
        "platforms", "colab", "workdir", "path", "max_size", "index_url", "constraints", "a",
        '"quoted.key"', "x-y", "mode", "when", "content", "append", "source", "unpack",
        "variables", "venv", "build", "commands", "check", "once", "print", "__builtins__"]
SCALARS = st.one_of(
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
    st.sampled_from(["nan", "inf", "-inf", "+inf", "1e400", "0.0", "-0", "true", "false",
                     "1979-05-27T07:32:00Z", "07:32:00", "0x1F", "0o17", "1_000"]),
    st.text(max_size=40).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"')
                             .replace("\n", "\\n") + '"'),
    st.text(alphabet=string.printable, max_size=30).map(lambda t: "'" + t.replace("'", "")
                                                        .replace("\n", "") + "'"),
)


def _value(children):
    return st.one_of(
        st.lists(children, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(st.sampled_from(KEYS), children), max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{k} = {v}" for k, v in pairs) + "}"),
    )


VALUES = st.recursive(SCALARS, _value, max_leaves=12)
DOTTED = st.lists(st.sampled_from(KEYS), min_size=1, max_size=40).map(".".join)
LINES = st.one_of(
    st.tuples(DOTTED, VALUES).map(lambda kv: f"{kv[0]} = {kv[1]}"),
    DOTTED.map(lambda k: f"[{k}]"),
    DOTTED.map(lambda k: f"[[{k}]]"),
    st.text(max_size=30),
)
DOCUMENTS = st.lists(LINES, max_size=15).map("\n".join)


def parses_or_refuses(text):
    try:
        parse(text, source="p.toml")
    except ProfileError as error:
        assert str(error)   # renders


@BOUNDED
@given(DOCUMENTS)
def test_toml_like_text_gives_a_profile_or_a_profile_error(text):
    parses_or_refuses(text)


@BOUNDED
@given(st.one_of(st.text(max_size=500), st.binary(max_size=500)))
def test_any_text_or_bytes_give_a_profile_or_a_profile_error(data):
    parses_or_refuses(data)


# -- masking ---------------------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits
SEPARATORS = st.sampled_from([" ", "\n", "\t", "=", ":", "/", "?", "&", "'", '"', ",", "(", ")",
                              "<", ">", "|", ";", "@", "#"])
SURROUNDING = st.text(alphabet=string.printable, max_size=30)


def token(prefix: str, alphabet: str, low: int, high: int):
    return st.text(alphabet=alphabet, min_size=low, max_size=high).map(lambda s: prefix + s)


SHAPES = st.one_of(
    token("hf_", ALNUM, 30, 40),
    st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]).flatmap(
        lambda p: token(p, ALNUM, 36, 40)),
    token("github_pat_", ALNUM + "_", 40, 82),
    token("sk-", ALNUM + "_-", 40, 60),
    token("sk-proj-", ALNUM + "_-", 40, 60),
    token("xoxb-", ALNUM + "-", 20, 50),
    token("xoxp-", ALNUM + "-", 20, 50),
    token("https://hooks.slack.com/services/", ALNUM + "/", 20, 44),
    token("AKIA", string.ascii_uppercase + string.digits, 16, 16),
    token("glpat-", ALNUM + "_-", 20, 20),
    token("AIza", ALNUM + "_-", 35, 35),
    st.tuples(st.sampled_from("123"), st.text(alphabet=ALNUM, min_size=26, max_size=26),
              st.text(alphabet=ALNUM, min_size=21, max_size=21)).map(
        lambda t: f"{t[0]}{t[1]}_{t[2]}"),   # ngrok
)


@BOUNDED
@given(SURROUNDING, SEPARATORS, SHAPES, SEPARATORS, SURROUNDING)
def test_no_known_token_shape_survives_masking(before, left, secret, right, after):
    text = before + left + secret + right + after
    masked = redact.mask(text)
    assert secret not in masked
    assert redact.mask(masked) == masked     # masking is stable


SECRET_VALUE = st.text(alphabet=ALNUM + "-_.~!$*+", min_size=1, max_size=30)


@BOUNDED
@given(st.text(alphabet=ALNUM, min_size=1, max_size=12), SECRET_VALUE,
       st.sampled_from(["token", "access_token", "api_key", "sig", "signature",
                        "X-Amz-Signature", "X-Amz-Credential", "password", "key", "secret"]),
       SECRET_VALUE)
def test_url_credentials_and_signed_queries_never_survive(user, password, name, value):
    url = f"https://{user}:{password}@files.example.org/w.bin?v=1&{name}={value}#x"
    masked = redact.mask(url)
    assert f":{password}@" not in masked and f"{name}={value}" not in masked
    cleaned, removed = redact.clean_url(url)
    assert removed and "@" not in cleaned and f"{name}=" not in cleaned


@pytest.fixture
def declared(monkeypatch):
    monkeypatch.setenv("PROPERTY_DECLARED", "placeholder")
    redact.declare(["PROPERTY_DECLARED"])
    return monkeypatch


@BOUNDED
@given(SURROUNDING, st.text(alphabet=string.printable, min_size=redact.DECLARED_MIN,
                            max_size=40).filter(lambda v: v.strip() and "*" not in v),
       SURROUNDING)
def test_a_declared_secret_never_survives(declared, before, value, after):
    declared.setenv("PROPERTY_DECLARED", value)
    assert value not in redact.mask(before + value + after)


ENV_NAME = st.from_regex(r"[A-Z_][A-Z0-9_]{0,15}", fullmatch=True)


@BOUNDED
@given(st.text(alphabet=ALNUM, min_size=1, max_size=12), ENV_NAME, SECRET_VALUE,
       st.sampled_from(["token", "sig", "X-Amz-Signature", "password"]))
def test_a_reference_stays_and_a_default_after_it_is_masked(user, name, value, query):
    """``{env:NAME}`` in a URL names a secret (kept, so a saved profile still works);
    ``{env:NAME:-value}`` holds one."""
    url = f"https://{user}:{{env:{name}}}@h.example/simple?{query}={{env:{name}}}"
    assert redact.mask(url) == url and redact.secret_lines(url) == []
    with_default = f"https://{user}:{{env:{name}:-{value}}}@h.example/x?{query}={value}"
    masked = redact.mask(with_default)
    assert f":-{value}}}@" not in masked and f"{query}={value}" not in masked
    assert redact.secret_lines(f"a = 1\nurl = \"{with_default}\"\n") == [2]
