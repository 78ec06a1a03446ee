"""The ``secrets`` step: environment variables filled from a secret store, never from the profile.

Reads: ``[secrets]``, which maps an environment variable to the *name* of a
secret (``HF_TOKEN = "HF_TOKEN"``), and the platform's secret sources, tried in
this order until one has the secret:

- ``colab``: ``google.colab.userdata.get(name)`` (Colab's key-icon panel);
- ``kaggle``: ``kaggle_secrets.UserSecretsClient().get_secret(name)``
  (Kaggle's Add-ons > Secrets);
- ``dotenv``: ``KEY=VALUE`` lines of the file ``.env`` in the store;
- ``environ``: an environment variable named like the secret.

Changes: ``os.environ`` (``ctx.environ``) of this process only. Values are never
written to disk, printed, put in the report, in a progress line or in an
error; only names and where a value came from are. ``ctx.state["secrets"]``
holds the names of the variables this step owns (so that nothing saves them).

``check`` holds when every variable is already set and not empty, so a second
restore asks no secret store again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from ..context import Context
from ..errors import StepError
from ..platform import PAGE, PROCESS, colab_page
from ..profile import Profile
from ..redact import remember
from . import Check

DOTENV = ".env"
LABELS = {"colab": "Colab secrets", "kaggle": "Kaggle secrets", "dotenv": "the store's .env",
          "environ": "the environment"}
_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def wanted(profile: Profile) -> bool:
    return bool(profile.secrets)


def check(ctx: Context) -> Check:
    ctx.state.setdefault("secrets", {})["env"] = sorted(ctx.profile.secrets)
    missing = [env for env in ctx.profile.secrets if not ctx.environ.get(env)]
    count = len(ctx.profile.secrets)
    if not missing:
        return Check(True, f"{count} secret{'s' if count != 1 else ''} set")
    return Check(False, f"{len(missing)} of {count} secret{'s' if count != 1 else ''} to fetch",
                 [f"set {env} from secret {ctx.profile.secrets[env]}" for env in missing],
                 missing)


class Miss(Exception):
    """A source does not give this secret: why (never a value) and what the user can do."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class Sources:
    """The platform's secret sources, with what they learnt across lookups of one restore."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.unavailable: dict[str, Miss] = {}   # a source that cannot answer at all
        self._dotenv_values: dict[str, str] | None = None
        self._kaggle_client: Any = None

    def fetch(self, source: str, name: str) -> str:
        if source in self.unavailable:
            raise self.unavailable[source]
        getter: Callable[[str], str] = getattr(self, f"_{source}")
        value = getter(name)
        if not value:
            raise Miss(f"{name} is empty")
        return value

    # -- the sources ---------------------------------------------------------

    def _colab(self, name: str) -> str:
        how = colab_page(self.ctx.environ)
        if how != PAGE:
            # Colab's secrets come through the page: a plain process gets AttributeError,
            # an unconnected kernel waits 10 s per secret. Say so once, use the others.
            where = "a plain process" if how == PROCESS else "a kernel not connected to it"
            self.ctx.note(f"Colab's secrets can only be read from the notebook page, not from "
                          f"{where}: using {', '.join(LABELS[s] for s in self._others('colab'))}")
            raise self._gone("colab", Miss(
                f"Colab's secrets cannot be read from {where}",
                "run %restore_env in the notebook open in Colab, or put the secret in "
                f"{self.dotenv_path()} or the environment")) from None
        try:
            from google.colab import userdata
        except ImportError:
            raise self._gone("colab", Miss("google.colab is not importable here")) from None
        not_found = getattr(userdata, "SecretNotFoundError", None)
        no_access = getattr(userdata, "NotebookAccessError", None)
        timed_out = getattr(userdata, "TimeoutException", None)
        try:
            return userdata.get(name)
        except Exception as exc:
            if not_found is not None and isinstance(exc, not_found):
                raise Miss(f"there is no secret named {name}",
                           f"add it in Colab: the key icon in the left sidebar > Add new secret, "
                           f"name {name}, and turn on Notebook access") from None
            if no_access is not None and isinstance(exc, no_access):
                raise Miss(f"this notebook has no access to secret {name}",
                           f"grant it in Colab: the key icon in the left sidebar, then turn on "
                           f"'Notebook access' for {name}") from None
            if timed_out is not None and isinstance(exc, timed_out):
                # Each request waits about 10 s for the UI: ask no more this restore.
                raise self._gone("colab", Miss(
                    "Colab's secret store did not answer (secrets can only be fetched when "
                    "running from the Colab UI)",
                    "run the restore from the notebook open in Colab's UI, or put the secret "
                    f"in {self.dotenv_path()}")) from None
            if isinstance(exc, ValueError):
                raise Miss(f"Colab refused the name {name!r}",
                           "secret names have no spaces; fix the name in [secrets]") from None
            raise

    def _kaggle(self, name: str) -> str:
        if self._kaggle_client is None:
            try:
                from kaggle_secrets import UserSecretsClient
            except ImportError:
                raise self._gone("kaggle", Miss("kaggle_secrets is not importable here")) \
                    from None
            try:
                self._kaggle_client = UserSecretsClient()
            except Exception as exc:
                raise self._gone("kaggle", Miss(
                    f"Kaggle's secret service is not available ({type(exc).__name__}: this "
                    "is not a Kaggle notebook session)")) from None
        try:
            return self._kaggle_client.get_secret(name)
        except ConnectionError as exc:
            # Kaggle's client makes every failure to talk to the service a ConnectionError;
            # the HTTPError it came from (if any) says which it was.
            status = getattr(exc.__cause__, "code", None)
            close = getattr(exc.__cause__, "close", None)
            if callable(close):
                close()   # an HTTPError holds the answer's connection open
            if status in (401, 403):
                raise Miss(f"Kaggle's secret service refused this session (HTTP {status})",
                           "run the notebook from its editor on kaggle.com as its owner (a "
                           f"copy or someone else's session has no access to {name}), or put "
                           f"the secret in {self.dotenv_path()}") from None
            if isinstance(status, int):
                raise Miss(f"Kaggle's secret service failed (HTTP {status})",
                           "try again in a minute") from None
            # No answer at all: the session's internet is off. It is off for every secret.
            raise self._gone("kaggle", Miss(
                "Kaggle's secret service could not be reached (the notebook's internet is off)",
                "turn the internet on in the notebook's Settings, or put the secret in "
                f"{self.dotenv_path()}")) from None
        except Exception as exc:
            # BackendError's text carries the service's answer; keep only what we know.
            if "No user secrets exist" in str(exc):
                raise Miss(f"no secret labelled {name} is attached to this notebook",
                           f"in the notebook editor: Add-ons > Secrets, add {name} and tick "
                           "it for this notebook") from None
            if type(exc).__name__ == "CredentialError":
                raise Miss("Kaggle's secret service refused this session",
                           "check Add-ons > Secrets in the notebook editor") from None
            raise Miss(f"Kaggle's secret service failed ({type(exc).__name__})",
                       "check Add-ons > Secrets in the notebook editor") from None

    def _dotenv(self, name: str) -> str:
        path = self.dotenv_path()
        if self._dotenv_values is None:
            self._dotenv_values = read_dotenv(path, self.ctx.note)
        if name not in self._dotenv_values:
            raise Miss(f"{path} has no {name}" if path.is_file() else f"there is no {path}")
        return self._dotenv_values[name]

    def _environ(self, name: str) -> str:
        if name not in self.ctx.environ:
            raise Miss(f"no environment variable {name}")
        return self.ctx.environ[name]

    # -- helpers -------------------------------------------------------------

    def dotenv_path(self) -> Path:
        return self.ctx.store.root / DOTENV

    def _others(self, source: str) -> list[str]:
        return [other for other in self.ctx.platform.secret_sources if other != source]

    def _gone(self, source: str, miss: Miss) -> Miss:
        self.unavailable[source] = miss
        return miss


def read_dotenv(path: Path, note: Callable[[str], None] | None = None) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export``, quotes and ``#`` comments allowed); {} when absent.

    A line that is not an assignment is skipped with a note naming its number
    only: its text might be a secret.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise StepError(f"cannot read {path}: {getattr(exc, 'strerror', None) or 'not UTF-8'}",
                        where=str(path), hint="check the file's permissions and encoding") \
            from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        found = _LINE.match(line)
        if not found:
            if note is not None:
                note(f"skipped line {number} of {path}: not KEY=VALUE")
            continue
        key, value = found.group(1), found.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        values[key] = value
    return values


def apply(ctx: Context, plan: Check) -> None:
    sources = Sources(ctx)
    for env in plan.data:
        name = ctx.profile.secrets[env]
        misses: list[tuple[str, Miss]] = []
        for source in ctx.platform.secret_sources:
            try:
                value = sources.fetch(source, name)
            except Miss as miss:
                misses.append((source, miss))
                continue
            remember(value)
            ctx.environ[env] = value
            ctx.note(f"{env} from {LABELS.get(source, source)}")
            break
        else:
            raise not_found(ctx, env, name, misses, sources.dotenv_path())


def not_found(ctx: Context, env: str, name: str, misses: list[tuple[str, Miss]],
              dotenv: Path) -> StepError:
    hints = [miss.hint for _, miss in misses if miss.hint]
    hints.append(f"or add the line {name}=... to {dotenv} (never to the profile)")
    return StepError(
        f"secret {name} (for {env}) was not found",
        where=ctx.where(f"secrets.{env}"),
        details="\n".join(f"{LABELS.get(source, source)}: {miss.reason}"
                          for source, miss in misses),
        hint="; ".join(hints))
