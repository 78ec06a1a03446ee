"""Common error types used across Colab python functions (as in colabtools)."""


class Error(Exception):
    """Base class for all Colab errors."""


class AuthorizationError(Error):
    """Authorization-related failures."""
