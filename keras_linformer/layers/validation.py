"""Argument checks shared by the layers and models."""


def check_positive_int(name, value):
    """Raises a ValueError unless `value` is a positive int (not a bool)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )


def check_dropout(dropout):
    """Raises a ValueError unless `0 <= dropout < 1`."""
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(
            f"`dropout` must be in [0, 1). Received: dropout={dropout!r}"
        )
