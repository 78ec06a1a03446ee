"""Colab's messaging with the notebook page; only its error type is faked."""

from google.colab import errors


class MessageError(errors.Error):
    """Thrown on error response from frontend."""
