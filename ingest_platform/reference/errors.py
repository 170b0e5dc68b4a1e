"""The reference domain's one error type (its own module, so every reference module can raise it
without importing another)."""


class ReferenceDataError(ValueError):
    """A reference file is missing or malformed; the message names the file."""
