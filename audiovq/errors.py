"""The one error type for problems a user can cause.

Library code raises `AudioVQError` (or a subclass) with a one-line message naming the file,
speaker or value at fault; the CLI and the recipes print it as one line and exit non-zero.
Anything else escaping is a bug in audiovq and keeps its traceback.
"""


class AudioVQError(Exception):
    """A user-facing error: bad file, unknown speaker, wrong checkpoint, bad config value."""


class AudioError(AudioVQError):
    """Audio that cannot be used: missing, unreadable, empty, non-finite or silent."""


class ConfigError(AudioVQError):
    """An unknown config key or a value of the wrong type or range."""


class CheckpointError(AudioVQError):
    """A checkpoint that is missing, corrupt, unsafe or made for another model."""
