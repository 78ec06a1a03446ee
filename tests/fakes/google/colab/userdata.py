"""API to access user secrets, faked for tests.

Same classes, messages and checks as colabtools' ``google/colab/userdata.py``;
the answer of the notebook page comes from a JSON file instead.

Environment of the fake:
  FAKE_COLAB_SECRETS       a JSON file: {"NAME": "value"} for a secret this
                           notebook may read, {"NAME": {"value": "...",
                           "access": false}} for one it may not. Unset: no page
                           answers, as when the kernel runs without the Colab UI.
  FAKE_COLAB_SECRETS_WAIT  seconds to wait before the timeout (the real one
                           waits 10; default 0)
  FAKE_COLAB_LOG           a file; each get() call appends "get <key>"
"""

import json as _json
import os as _os
import re as _re
import threading
import time as _time

from google.colab import errors


class NotebookAccessError(Exception):
  """Exception thrown when the current notebook doesn't have access to the requested secret."""

  def __init__(self, key):
    super().__init__(f'Notebook does not have access to secret {key}')


class SecretNotFoundError(errors.Error):
  """Exception thrown when the requested secret is not found."""

  def __init__(self, key):
    super().__init__(f'Secret {key} does not exist.')


class TimeoutException(errors.Error):
  """Exception thrown when requesting a secret times out."""

  def __init__(self, key):
    super().__init__(
        f'Requesting secret {key} timed out. Secrets can only be fetched when'
        ' running from the Colab UI.'
    )


_userdata_lock = threading.Lock()


def _blocking_request(key):
  """What the page would answer: None on timeout, else exists/access/payload."""
  path = _os.environ.get('FAKE_COLAB_SECRETS')
  if not path:
    _time.sleep(float(_os.environ.get('FAKE_COLAB_SECRETS_WAIT', '0')))
    return None
  with open(path) as handle:
    secrets = _json.load(handle)
  if key not in secrets:
    return {'exists': False, 'access': False}
  entry = secrets[key]
  if isinstance(entry, dict):
    return {'exists': True, 'access': entry.get('access', True),
            'payload': entry.get('value', '')}
  return {'exists': True, 'access': True, 'payload': entry}


def get(key):
  """Fetches the value for specified secret keys.

  Raises:
    TimeoutException: If the request times out, usually due to being run from an
    export where the Colab UI is not available.
    NotebookAccessError: If the notebook does not have access to the requested
    secret.
    SecretNotFoundError: If the requested secret is not found.
  """
  log = _os.environ.get('FAKE_COLAB_LOG')
  if log:
    with open(log, 'a') as handle:
      handle.write('get {}\n'.format(key))
  if not key or not isinstance(key, str):
    raise ValueError('Please enter a valid secret name')
  if _re.search(r'\s', key):
    raise ValueError('Secret name cannot contain spaces or whitespace')
  with _userdata_lock:
    resp = _blocking_request(key)
  if not resp:
    raise TimeoutException(key)
  if not resp.get('exists', False):
    raise SecretNotFoundError(key)
  if not resp.get('access', False):
    raise NotebookAccessError(key)
  return resp.get('payload', '')
