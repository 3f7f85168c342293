"""Keep secrets (the Lichess API token) out of log lines.

The bot never formats the token into a message; this is the second line of defence for text that
others produce (exception messages, library debug lines). `redacted_logging(secrets)` installs a log-record
factory for its duration, so every record is redacted when it is created and every handler (the CLI's,
pytest's, one added later) sees only redacted text. `RedactingFilter` does the same for one handler.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Callable, Iterable, Iterator

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter strings are not treated as secrets (masking them would garble ordinary text)."""

_factory_lock = threading.Lock()


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by `***`."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_record(record: logging.LogRecord, secrets: Iterable[str]) -> logging.LogRecord:
    """Redact a record in place: its message (arguments merged in), exception text and stack text."""
    secrets = [s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH]
    if not secrets:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a malformed format string: keep what there is, redacted
        message = f"{record.msg} {record.args}"
    record.msg, record.args = redact(message, secrets), None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text, secrets)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets)
    return record


class RedactingFilter(logging.Filter):
    """A handler filter that masks the given secrets in every record it lets through."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record, self.secrets)
        return True


@contextlib.contextmanager
def redacted_logging(secrets: Iterable[str]) -> Iterator[None]:
    """Redact `secrets` from every log record created while the context is open (any logger, any thread)."""
    secrets = [s for s in secrets if s]
    with _factory_lock:
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs), secrets)

        logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        with _factory_lock:
            if logging.getLogRecordFactory() is factory:
                logging.setLogRecordFactory(previous)
