"""Exception types. A `UserError` is something the user can fix (bad path, bad file, bad option):
the CLI prints its message on one line and exits with code 2. An `EngineError` that is not a user error (an
engine that crashed, hung or broke the protocol) prints one line and exits with code 1. Anything else is a
bug and raises."""


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


class EngineError(Exception):
    """A UCI engine died, timed out, or answered something unusable: the engine's failure, not the user's."""


class EngineSetupError(EngineError, UserError):
    """A UCI engine cannot be set up as asked: missing, not executable, not a UCI engine, or an option it
    does not have or a value out of its range. The user can fix that."""
