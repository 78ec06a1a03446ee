"""UserSecret client classes (``kaggle_secrets`` in Kaggle's docker-python image), for tests.

The class, method, exceptions and messages notebook-bootstrap meets, with the
request going through ``kaggle_web_client`` to ``KAGGLE_URL_BASE`` for real.
"""

from kaggle_web_client import BackendError, CredentialError, KaggleWebClient  # noqa: F401


class ValidationError(Exception):
    pass


class NotFoundError(Exception):
    pass


class UserSecretsClient():
    GET_USER_SECRET_BY_LABEL_ENDPOINT = '/requests/GetUserSecretByLabelRequest'

    def __init__(self):
        self.web_client = KaggleWebClient()

    def get_secret(self, label) -> str:
        """Retrieves a user secret value by its label."""
        if label is None or len(label) == 0:
            raise ValidationError("Label must be non-empty.")
        answer = self.web_client.make_post_request({'Label': label},
                                                   self.GET_USER_SECRET_BY_LABEL_ENDPOINT)
        if 'secret' not in answer:
            raise BackendError(f'Unexpected response from the service. Response: {answer}')
        return answer['secret']
