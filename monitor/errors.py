"""Errors that reach the operator as one line naming the problem and the fix."""


class VqmonError(Exception):
    """A user-facing error: bad config, bad input file, unreachable source.

    The message is printed as-is (one line, no traceback), so it must say what is wrong
    and what to do about it.
    """


class ConfigError(VqmonError):
    pass


class SourceError(VqmonError):
    """A video source could not be opened or read."""
