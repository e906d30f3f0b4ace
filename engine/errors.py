"""Errors the engine raises for problems a user can fix."""


class DataError(ValueError):
    """An uploaded file or column mapping cannot be used; the message says what is wrong and how to fix it."""


class ModelNotFoundError(ValueError):
    """A base model name is neither in the catalog, nor a local model folder, nor reachable on the hub."""
