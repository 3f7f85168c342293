"""Exception types. A `UserError` is something the user can fix (bad path, bad file, bad option):
the CLI prints its message on one line and exits with code 2. Anything else is a bug and raises."""


class UserError(Exception):
    """An error caused by input the user gave; its message is shown as is, without a traceback."""


class RecordsError(UserError):
    """A game-records file is missing or malformed."""


class CheckpointError(UserError):
    """A checkpoint is missing, truncated, corrupt, or does not match its config."""


class ConfigError(UserError):
    """A configuration file or option is invalid."""


class PlayerSpecError(UserError):
    """A player spec names an unknown player or gives it a bad option."""


class EngineError(UserError):
    """A UCI engine is missing, died, timed out, or answered something unusable."""
