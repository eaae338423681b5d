"""What `shopbot serve` logs, and what it keeps out: tokens, secrets and customers' data.

- The access log: uvicorn's, with `?access_token=` (how `EventSource` clients send the
  conversation token) redacted to `access_token=[redacted]` by a filter on the
  `uvicorn.access` logger (`log_config`, applied by uvicorn in every worker process).
- ShopBot's own lines (`shopbot.*`, INFO and up) print as uvicorn's do.
- Libraries that log payloads at DEBUG (SQLAlchemy's statements and rows, aiosqlite's
  calls with their parameters, sse-starlette's chunks, which carry the conversation) stay
  quiet when only the root level is lowered: `quiet_payload_loggers` sets their level
  unless it is already set, as psycopg does for its own logger. Asking for them by name
  still works; engines hide bound parameters anyway (`db.engine`).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from shopbot.redact import redact_query_tokens

__all__ = ["PAYLOAD_LOGGERS", "RedactQueryTokens", "log_config", "quiet_payload_loggers"]

PAYLOAD_LOGGERS = {
    "sqlalchemy.engine": logging.WARNING,
    "aiosqlite": logging.INFO,
    "sse_starlette": logging.INFO,
}
"""Loggers whose DEBUG (or, for SQLAlchemy, INFO) lines carry data, and the level they get."""


class RedactQueryTokens(logging.Filter):
    """Rewrites a record's message and arguments with tokens in query strings redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the redacting filter and ShopBot's loggers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_query_tokens": {"()": f"{__name__}.RedactQueryTokens"}}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_query_tokens"]
    config["loggers"]["shopbot"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def quiet_payload_loggers() -> None:
    """Give each of `PAYLOAD_LOGGERS` its level, unless something set one already."""
    for name, level in PAYLOAD_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
