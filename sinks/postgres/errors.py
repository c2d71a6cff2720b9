"""Which failed writes to retry: a database away or busy is retried, a refused record is
set aside.

Failures are told apart by SQLSTATE class (PostgreSQL's "Appendix A. Error Codes"),
not by exception class: psycopg maps ``54000`` (an index row too large: a record's
fault) to ``OperationalError`` just as it maps a lost connection. Classes that say
nothing about the records (the connection, a rollback for serialization or deadlock,
resources, an operator's shutdown, a missing table or privilege) are retried: the
operator can fix them and no record is lost. The rest (data exceptions ``22``,
integrity ``23``, program limits ``54``…) point at the batch's records.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa

from sinks.base import Refusal, first_line

#: SQLSTATE classes of failures that are not a record's fault, retried as they are.
RETRIED_CLASSES = {
    "08": "connection exception",
    "25": "invalid transaction state (a read-only standby after a failover)",
    "28": "invalid authorization",
    "3D": "invalid catalog name",
    "3F": "invalid schema name",
    "40": "transaction rollback (serialization failure, deadlock)",
    "42": "syntax error or access rule violation (a missing table, a revoked privilege)",
    "53": "insufficient resources",
    "55": "object not in prerequisite state (a lock not available)",
    "57": "operator intervention (shutdown, pg_terminate_backend, cancel)",
    "58": "system error",
    "XX": "internal error",
}

DATABASE_REFUSED = "database-refused"


def _cause(exc: BaseException) -> BaseException:
    """The driver's exception under SQLAlchemy's wrapper."""
    if isinstance(exc, sa.DBAPIError) and exc.orig is not None:
        return exc.orig
    return exc


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a failed statement, None when the server sent none."""
    cause = _cause(exc)
    return cause.sqlstate if isinstance(cause, psycopg.Error) else None


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same write may succeed: True for a lost or refused
    connection and the SQLSTATE classes of :data:`RETRIED_CLASSES`."""
    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.TimeoutError | sa.DisconnectionError):  # the pool's
        return True
    cause = _cause(exc)
    code = sqlstate(cause)
    if code is not None:
        return code[:2] in RETRIED_CLASSES
    # No SQLSTATE: psycopg lost the connection ("server closed the connection
    # unexpectedly", "the connection is closed") or could not open one.
    return isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError | OSError)


def refusal(exc: BaseException) -> Refusal:
    """The refusal of one record whose write failed with ``exc``."""
    cause = _cause(exc)
    code = sqlstate(cause)
    if code is not None or isinstance(cause, psycopg.DatabaseError):
        return Refusal(DATABASE_REFUSED, f"SQLSTATE {code or '-'}: {first_line(cause)}")
    return Refusal("write-error", f"{type(cause).__name__}: {first_line(cause)}")
