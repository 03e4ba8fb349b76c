"""The one error type the CLI turns into a one-line message (never a traceback)."""


class AwCodeError(Exception):
    """A problem the operator can fix; the message names what and how."""
