"""The error every export failure a user can cause is reported with."""


class ExportError(ValueError):
    """A model could not be exported; the message says why, in one line."""
