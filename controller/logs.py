"""structlog configuration: called once, by `cli.main`, never at import.

SHELL. JSON lines on stderr when stderr is not a TTY (or `log_format=json`), a
console renderer otherwise. stdout stays reserved for command output such as
`rktctl plan --json`. Tests never call this; they use `structlog.testing`.
"""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog events at `level` and above to stderr in `fmt` (auto|json|console)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        processors.append(structlog.processors.dict_tracebacks)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # No logger caching: a pass logs a handful of lines, so the saving is nil, and
        # cached module-level loggers would ignore a later reconfiguration (tests,
        # `structlog.testing.capture_logs`).
        cache_logger_on_first_use=False,
    )
