"""structlog configuration: called once, by `cli.main`, never at import.

SHELL. JSON lines on stderr when stderr is not a TTY (or `log_format=json`), a
console renderer otherwise. stdout stays reserved for command output such as
`rktctl plan --json`. Tests never call this; they use `structlog.testing`.
"""

from __future__ import annotations

import logging
import sys

import structlog
import structlog.tracebacks

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog events at `level` and above to stderr in `fmt` (auto|json|console)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    # Tracebacks without local variables, in both formats: structlog's defaults print
    # every frame's locals, which put specs' env values and raw --set-env=K=V words
    # (everything redact_argv hides) into the journal whenever a pass crashed.
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        processors.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
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
