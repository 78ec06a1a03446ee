"""UserSecret client classes, faked for tests (Kaggle's ``kaggle_secrets``).

Same class, exceptions and messages as the module in Kaggle's docker-python
image; the service's answers come from a JSON file instead of the network.

Environment of the fake:
  KAGGLE_USER_SECRETS_TOKEN  must be set, as in a Kaggle session (else CredentialError)
  FAKE_KAGGLE_SECRETS        a JSON file {"LABEL": "value"} of the secrets
                             attached to this notebook
  FAKE_KAGGLE_OFFLINE        "1": the service cannot be reached (internet off)
"""

import json
import os

_KAGGLE_USER_SECRETS_TOKEN_ENV_VAR_NAME = "KAGGLE_USER_SECRETS_TOKEN"


class CredentialError(Exception):
    pass


class BackendError(Exception):
    pass


class ValidationError(Exception):
    pass


class NotFoundError(Exception):
    pass


class UserSecretsClient():
    GET_USER_SECRET_BY_LABEL_ENDPOINT = '/requests/GetUserSecretByLabelRequest'

    def __init__(self):
        self.jwt_token = os.getenv(_KAGGLE_USER_SECRETS_TOKEN_ENV_VAR_NAME)
        if self.jwt_token is None:
            raise CredentialError(
                'A JWT Token is required to use the UserSecretsClient, '
                f'but none found in environment variable {_KAGGLE_USER_SECRETS_TOKEN_ENV_VAR_NAME}')

    def _make_post_request(self, data: dict) -> dict:
        if os.getenv('FAKE_KAGGLE_OFFLINE') == '1':
            raise ConnectionError('Connection error trying to communicate with service.')
        path = os.getenv('FAKE_KAGGLE_SECRETS')
        secrets = {}
        if path:
            with open(path) as handle:
                secrets = json.load(handle)
        label = data['Label']
        if label not in secrets:
            response_json = {
                'errors': [f'No user secrets exist for kernel id 12345678 and label {label}'],
                'error': {'code': 5, 'details': []}, 'wasSuccessful': False}
            raise BackendError(
                f'Unexpected response from the service. Response: {response_json}.')
        return {'secret': secrets[label]}

    def get_secret(self, label) -> str:
        """Retrieves a user secret value by its label."""
        if label is None or len(label) == 0:
            raise ValidationError("Label must be non-empty.")
        response_json = self._make_post_request({'Label': label})
        if 'secret' not in response_json:
            raise BackendError(
                f'Unexpected response from the service. Response: {response_json}')
        return response_json['secret']
