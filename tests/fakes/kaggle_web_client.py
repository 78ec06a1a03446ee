"""Kaggle's web client (``kaggle_web_client`` in Kaggle's docker-python image), for tests.

Not a stand-in for the network: like the real module it posts JSON with urllib
to ``KAGGLE_URL_BASE`` (tests serve it on 127.0.0.1, or point it at a closed
port for "internet off") and maps failures to the same exceptions and
messages. One quirk of the real module is kept on purpose: it catches
``URLError`` before ``HTTPError``, and ``HTTPError`` is a ``URLError``, so every
HTTP error status (401, 403, 5xx) surfaces as ``ConnectionError('Connection
error trying to communicate with service.')`` with the ``HTTPError`` as its
``__cause__``; only a timeout says "Please ensure internet is on.".
"""

import json
import os
import socket
import urllib.request
from urllib.error import URLError

TIMEOUT_SECS = 40
_TOKEN_VARIABLE = "KAGGLE_USER_SECRETS_TOKEN"


class CredentialError(Exception):
    pass


class BackendError(Exception):
    pass


class KaggleWebClient:

    def __init__(self):
        self.url_base = os.getenv("KAGGLE_URL_BASE") or "https://www.kaggle.com"
        self.jwt_token = os.getenv(_TOKEN_VARIABLE)
        if self.jwt_token is None:
            raise CredentialError(
                'A JWT Token is required to call Kaggle, '
                f'but none found in environment variable {_TOKEN_VARIABLE}')
        self.headers = {'Content-type': 'application/json',
                        'X-Kaggle-Authorization': f'Bearer {self.jwt_token}'}

    def make_post_request(self, data: dict, endpoint: str, timeout: int = TIMEOUT_SECS) -> dict:
        request = urllib.request.Request(f'{self.url_base}{endpoint}', headers=self.headers,
                                         data=json.dumps(dict(data)).encode("utf-8"))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer = json.loads(response.read())
        except (URLError, socket.timeout) as error:   # HTTPError included, as in Kaggle's
            timed_out = isinstance(error, socket.timeout) or \
                isinstance(getattr(error, "reason", None), socket.timeout)
            if timed_out:
                raise ConnectionError('Timeout error trying to communicate with service. '
                                      'Please ensure internet is on.') from error
            raise ConnectionError('Connection error trying to communicate with service.') \
                from error
        if not answer.get('wasSuccessful') or 'result' not in answer:
            raise BackendError(f'Unexpected response from the service. Response: {answer}.')
        return answer['result']
