"""What is secret, and masking it out of every text that is shown or saved.

The one place that decides. A text is masked of:

- the values of the variables a profile lists under ``[secrets]`` (``declare``),
  of values read from a secret store (``remember``), and of every environment
  variable whose name looks secret (``HF_TOKEN``, ``NGROK_AUTHTOKEN``,
  ``MYSQL_PWD``, ``SLACK_WEBHOOK_URL``...);
- the password (or a token standing as user name) in a URL's userinfo;
- the values of query parameters with token-like names (``token``, ``sig``,
  ``X-Amz-Signature``...);
- known token shapes (Hugging Face, GitHub, OpenAI, Slack, AWS, GitLab,
  ngrok, Google...), whatever variable or file they came from;
- the value of an ``Authorization:`` header and of a netrc ``password``.

A whole-value placeholder (``https://me:{env:INDEX_TOKEN}@host``) is a
reference to a secret, not one, and stays.

Progress lines, report rows, every error field, printed command lines, dry-run
plans, the VM record, saved profiles and setup-notebook parameters all go
through here. This module imports nothing from the package (``errors`` uses it).
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

#: Words that make an environment variable's name secret wherever they appear.
SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "WEBHOOK",
                "CREDENTIAL", "DSN", "COOKIE")
_SECRET_NAME = re.compile(
    # TOKENIZER (a model's tokenizer) and KEYBOARD hold the words but no secret
    "|".join(SECRET_WORDS).replace("TOKEN", "TOKEN(?!IZ)").replace("KEY", "KEY(?!BOARD)")
    + r"|PWD$|(?:^|_)(?:PAT|PASS|AUTH)(?:_|$)", re.I)
#: Names that match the words yet hold no secret (the working directory, a tokenizer switch...).
NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD", "TOKENIZERS_PARALLELISM", "SSH_AUTH_SOCK",
                              "XAUTHORITY", "KEYTIMEOUT", "DBUS_SESSION_BUS_ADDRESS",
                              "XDG_SESSION_ID", "XDG_SESSION_TYPE", "XDG_SESSION_CLASS",
                              "XDG_SESSION_DESKTOP", "DESKTOP_SESSION", "SESSION_MANAGER"})
#: Query parameter names (lower case, ``-`` as ``_``) whose values are secret ...
SECRET_QUERY_NAMES = frozenset({
    "token", "access_token", "refresh_token", "id_token", "auth", "authorization", "key",
    "api_key", "apikey", "sig", "signature", "secret", "client_secret", "password", "passwd",
    "pwd", "pass", "passphrase", "credential", "credentials", "code", "session", "sas",
    "x_amz_signature", "x_amz_credential", "x_amz_security_token", "x_goog_signature",
    "x_goog_credential", "x_oss_signature", "awsaccesskeyid", "googleaccessid", "se_token",
})
#: ... and so are those of any parameter whose name holds one of these words.
_SECRET_QUERY_WORD = re.compile(r"token|secret|passw|signature|credential|api_?key|auth", re.I)

#: Known token shapes, whatever variable or text they appear in.
TOKEN_SHAPES = re.compile(
    r"\bhf_[A-Za-z0-9]{20,}"                                  # Hugging Face
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"                          # GitHub
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}"       # OpenAI, Anthropic
    r"|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"                # Stripe
    r"|\bxox[abposre]-[A-Za-z0-9-]{10,}"                      # Slack tokens
    r"|\bxapp-[A-Za-z0-9-]{10,}"
    r"|hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"
    r"|discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+"
    r"|\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"     # AWS access key ids
    r"|\bAIza[0-9A-Za-z_-]{35}"                               # Google API keys
    r"|\bya29\.[0-9A-Za-z_-]{20,}|\bGOCSPX-[0-9A-Za-z_-]{20,}"
    r"|\bglpat-[A-Za-z0-9_-]{20,}|\bgl(?:dt|rt|ptt|cbt|oas)-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|\b[123][A-Za-z0-9]{20,40}_[A-Za-z0-9]{15,30}\b"        # ngrok authtokens and API keys
    r"|\bnpm_[A-Za-z0-9]{30,}|\bpypi-[A-Za-z0-9_-]{50,}"      # npm, PyPI
    r"|\br8_[A-Za-z0-9]{30,}"                                 # Replicate
    r"|\bdop_v1_[a-f0-9]{40,}"                                # DigitalOcean
    r"|\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"          # SendGrid
    r"|\b[0-9]{8,10}:AA[A-Za-z0-9_-]{30,}"                    # Telegram bots
    r"|\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}(?:\.[A-Za-z0-9_-]*)?"  # JWTs
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)")

#: What every token shape holds somewhere: a run of 13 token characters (the shortest
#: shape, a JWT, starts with one), or a literal. A cheap test before the costly one.
_CANDIDATE = re.compile(r"[A-Za-z0-9_-]{13}|hooks\.slack\.com|discord|PRIVATE KEY")

#: ``scheme://userinfo@``: the userinfo is masked (a user name alone stays when short
#: and not token-like, as in ``ssh://git@github.com``).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^\s/?#@]+)@")
#: ``?name=value`` and ``&name=value`` pairs.
_QUERY_PAIR = re.compile(r"(?P<lead>[?&;])(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&#\s\"'<>]*)")

#: A secret written after a keyword: an HTTP ``Authorization`` header (``curl -H``, ``wget
#: --header``) and a netrc line (``machine H login U password P``). The value is masked.
_KEYED = re.compile(r"(?P<lead>\bAuthorization\s*[:=]\s*(?:(?:Bearer|Basic|Token|Bot)\s+)?"
                    r"|\bmachine\s+\S+\s+login\s+\S+\s+password\s+)(?P<value>[^\s\"'\\]+)",
                    re.I)

#: A remembered or environment value shorter than this is not masked (it would
#: mask every "1" and "true" in the output); a declared one needs ``DECLARED_MIN``.
MIN_LENGTH = 6
DECLARED_MIN = 4

# Process-wide: the names a restore's [secrets] table made secret, and values read
# from a secret store. Only ever added to, so a later message still masks them.
_declared: set[str] = set()
_remembered: set[str] = set()
# id of a mapping -> (a copy of its data, how many names were declared, its secret values)
_values_cache: dict[int, tuple[dict, int, frozenset[str]]] = {}
# The environment a dry run works on (a copy of os.environ), watched besides os.environ.
_watched: list[Mapping[str, str]] = []


def declare(names: Iterable[str]) -> None:
    """Environment variables whose values are secret whatever they are called ([secrets])."""
    _declared.update(names)


def remember(value: str) -> None:
    """A value known to be secret (read from a secret store)."""
    if value and len(value) >= DECLARED_MIN:
        _remembered.add(value)


def watch(environ: Mapping[str, str]) -> None:
    """Mask the secrets of ``environ`` too (a dry run's copy of the environment)."""
    if environ is not os.environ:
        _watched[:] = [environ]


def is_secret_name(name: str) -> bool:
    """Whether an environment variable called ``name`` holds a secret by its name."""
    upper = name.upper()
    return upper not in NOT_SECRET_NAMES and bool(_SECRET_NAME.search(upper))


def is_secret_query_name(name: str) -> bool:
    key = name.lower().replace("-", "_")
    return key in SECRET_QUERY_NAMES or bool(_SECRET_QUERY_WORD.search(key))


def looks_secret(value: str) -> bool:
    """Whether ``value`` holds a secret by its shape: a token, URL userinfo or a signed query."""
    return mask_shapes(value) != value


def is_secret(name: str, value: str) -> bool:
    """Whether the variable ``name`` = ``value`` is secret: by its name, its value or [secrets]."""
    return name in _declared or is_secret_name(name) or looks_secret(value)


def secret_values(environ: Mapping[str, str] | None = None,
                  names: Iterable[str] = ()) -> dict[str, str]:
    """Variable name -> value of the secrets in ``environ``.

    Declared, ``names`` and secret-named.
    """
    environ = os.environ if environ is None else environ
    wanted = _declared.union(names)
    out = {}
    for name, value in environ.items():
        if not value:
            continue
        if name in wanted:
            out[name] = value
        elif len(value) >= MIN_LENGTH and is_secret_name(name):
            out[name] = value
    return out


def _values_of(environ: Mapping[str, str]) -> frozenset[str]:
    """The secret values of ``environ`` worth masking, remembered while it does not change.

    mask() runs for every progress line and report row; comparing a mapping with
    the copy kept last time costs far less than judging every name again.
    """
    data = getattr(environ, "_data", environ)   # os.environ keeps its bytes in _data
    cached = _values_cache.get(id(environ))
    if cached is not None and cached[1] == len(_declared) and cached[0] == data:
        return cached[2]
    values = frozenset(value for value in secret_values(environ).values()
                       if len(value) >= DECLARED_MIN)
    if len(_values_cache) > 8:
        _values_cache.clear()
    _values_cache[id(environ)] = (dict(data), len(_declared), values)
    return values


#: A profile's placeholder standing for a whole value (``{env:HF_TOKEN}``, ``{drive}``): a
#: reference to a secret, not one (a ``{env:NAME:-default}`` can hold one, so is not this).
_REFERENCE = re.compile(r"\{(?:env:)?[A-Za-z_][A-Za-z0-9_]*\}")


def _mask_userinfo(match: re.Match[str]) -> str:
    info = match.group("info")
    user, colon, password = info.partition(":")
    if colon and _REFERENCE.fullmatch(password):
        return match.group(0)
    if colon:
        return f"{match.group('scheme')}{user}:{MASK}@" if not _token_like(user) \
            else f"{match.group('scheme')}{MASK}@"
    if _token_like(info):
        return f"{match.group('scheme')}{MASK}@"
    return match.group(0)


def _token_like(text: str) -> bool:
    return len(text) >= 16 or bool(TOKEN_SHAPES.search(text))


def _mask_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    if value and is_secret_query_name(match.group("name")) and not _REFERENCE.fullmatch(value):
        return f"{match.group('lead')}{match.group('name')}={MASK}"
    return match.group(0)


def mask_shapes(text: str) -> str:
    """``text`` with URL userinfo, secret query values and known token shapes masked."""
    if not text:
        return text
    if _CANDIDATE.search(text):
        text = TOKEN_SHAPES.sub(MASK, text)
    if "@" in text:
        text = _USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _QUERY_PAIR.sub(_mask_pair, text)
    if "uthorization" in text or "password" in text.lower():
        text = _KEYED.sub(lambda m: m.group("lead") + MASK, text)
    return text


def mask(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret masked: known values first, then shapes."""
    if not isinstance(text, str) or not text:
        return text
    sources = [environ] if environ is not None else [os.environ, *_watched]
    values = set(_remembered)
    for source in sources:
        values.update(_values_of(source))
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return mask_shapes(text)


def shown_values(values: Mapping[str, object]) -> dict[str, object]:
    """``values`` (name -> value: [variables], a setup notebook's exports) to show: a value
    that is secret by its name or its shape is ``MASK``; ``mask`` the text they go into."""
    return {name: MASK if isinstance(value, str) and is_secret(name, value)
            or not isinstance(value, str) and is_secret_name(name) else value
            for name, value in values.items()}


def secret_lines(text: str) -> list[int]:
    """The numbers (from 1) of the lines of ``text`` that hold a secret value (not a reference)."""
    return [number for number, line in enumerate(text.splitlines(), 1) if mask(line) != line]


def clean_url(url: str) -> tuple[str, bool]:
    """``url`` to save: no userinfo password or token, no secret query parameters.

    Returns the URL and whether something was removed. A user name alone that is
    not token-like stays (``ssh://git@host``).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask(url), mask(url) != url
    netloc, removed = parts.netloc, False
    if "@" in netloc:
        info, host = netloc.rsplit("@", 1)
        user, colon, _ = info.partition(":")
        if colon or _token_like(info):
            netloc, removed = host, True
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not is_secret_query_name(k) and not looks_secret(v)]
        if len(kept) != len(pairs):
            query, removed = urlencode(kept), True
    if not removed:
        return url, False
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), True
