"""Colab's messaging with the notebook page, faked for tests.

As in colabtools, ``blocking_request`` first reaches for the kernel
(``get_ipython().kernel.parent``): in a plain process, where ``get_ipython()``
is None, that is ``AttributeError: 'NoneType' object has no attribute
'kernel'``. In a kernel whose page does not answer, it waits ``timeout_sec``
and returns None, as the real one does when no reply comes.

Environment of the fake:
  FAKE_COLAB_PAGE       "connected": the notebook page answers this process's
                        requests (a cell run from the page); unset: no page
  FAKE_COLAB_PAGE_WAIT  seconds an unanswered request waits (default: its
                        real ``timeout_sec``)
  FAKE_COLAB_MOUNT_AUTH how the page answers Drive's access dialog: "denied"
                        (the user refused: MessageError), "late" (no answer
                        within the timeout); unset: access granted
  FAKE_COLAB_SECRETS    a JSON file of the secrets panel (see userdata)
"""

import json as _json
import os as _os
import time as _time

from google.colab import _ipython as ipython, errors


class MessageError(errors.Error):
  """Thrown on error response from frontend."""


def _page_connected():
  return _os.environ.get('FAKE_COLAB_PAGE') == 'connected'


def _page_answer(request_type, request):
  """What the page replies, or None when it does not reply in time."""
  if request_type == 'request_auth':
    auth = _os.environ.get('FAKE_COLAB_MOUNT_AUTH', '')
    if auth == 'denied':
      raise MessageError('Error: credential propagation was unsuccessful')
    if auth == 'late':
      return None
    return {}
  if request_type == 'GetSecret':
    path = _os.environ.get('FAKE_COLAB_SECRETS')
    secrets = {}
    if path:
      with open(path) as handle:
        secrets = _json.load(handle)
    key = request['key']
    if key not in secrets:
      return {'exists': False, 'access': False}
    entry = secrets[key]
    if isinstance(entry, dict):
      return {'exists': True, 'access': entry.get('access', True),
              'payload': entry.get('value', '')}
    return {'exists': True, 'access': True, 'payload': entry}
  return None


def blocking_request(request_type, request='', timeout_sec=5, parent=None):
  """Calls the front end with a request, and blocks until a reply is received.

  Returns:
    Reply by front end (Json'able object), or None if the timeout occurs.
  """
  if _page_connected():
    answer = _page_answer(request_type, request)
    if answer is None:
      _wait(timeout_sec)
    return answer
  # The real send_request starts here: a plain process has no kernel.
  ipython.get_kernelapp()
  _wait(timeout_sec)
  return None


def _wait(timeout_sec):
  wait = _os.environ.get('FAKE_COLAB_PAGE_WAIT')
  _time.sleep(float(wait) if wait is not None else (timeout_sec or 0))
