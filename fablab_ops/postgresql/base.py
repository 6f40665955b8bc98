"""Django's PostgreSQL backend, with two round trips fewer: a kept connection is checked by asking its socket
before its server, and a transaction's BEGIN travels with its first statement.

The check. Persistent connections (CONN_MAX_AGE) are checked before each request's first query
(CONN_HEALTH_CHECKS), so a connection PostgreSQL closed while it sat idle (a restart, a terminated backend, an
idle timeout) is replaced instead of failing that request. Django's check is a `SELECT 1`: a round trip on every
request, which on the 2-core machine the benches run on costs about 0.1 ms of CPU on each side. A server that
closes a connection says so on its socket (its last message, then the end of the stream), so an idle connection
whose socket has nothing to read is still open; only when the socket has something does the check ask the
server. What this cannot see is a peer gone without a word (a cut network): Django's `SELECT 1` would wait for
the network's timeout there too; here the request's own first statement waits and fails instead, and the
connection is replaced after it (Django asks the server about a connection that saw an error).

The BEGIN. psycopg opens a transaction by sending BEGIN on its own and waiting for the answer before the first
statement: one more round trip in every transaction, a seat change's included. Here psycopg stays in
autocommit mode, and while Django is in a transaction (`atomic`) the cursor puts the BEGIN in front of the
transaction's first statement, in the same message (`Cursor.execute`; Django binds values on the client, so a
message may hold several statements). What psycopg sends without a statement of ours — COPY, a stream, a named
cursor's DECLARE, an executemany — gets its BEGIN first, alone, as before. COMMIT and ROLLBACK are still
Django's, through psycopg, which sends them whenever the server says a transaction is open. A named cursor is
declared WITH HOLD here even inside a transaction (Django asks psycopg, which says autocommit): correct, and it
only costs when an iteration is left unfinished at the commit.

And the moments. Django reads every `timestamptz` through psycopg's loader written in Python (a regular
expression and arithmetic, about 8 µs a value here; a seat change reads a dozen). Its connections speak UTC, so
PostgreSQL writes each moment as ISO text ending in `+00`, which Python's own parser (in C) reads in about 2 µs;
anything else (another zone, infinity, a date BC, a year past 9999) goes to psycopg's loader as before.
"""

import select
from datetime import datetime

import psycopg
from django.db.backends.postgresql.base import Cursor as ClientBindingCursor
from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import adapt, pq


class MomentLoader(BaseTzLoader):
    """Django's `timestamptz` loader (the moment in the database's zone, `timezone`), reading UTC text with
    Python's parser first (see the module)."""

    def load(self, data):
        text = bytes(data)
        if text.endswith(b"+00"):
            try:
                return datetime.fromisoformat(text[:-3].decode()).replace(tzinfo=self.timezone)
            except ValueError:
                pass
        return super().load(data)


_ADAPTERS: dict = {}


def _adapters(template: adapt.AdaptersMap, zone) -> adapt.AdaptersMap:
    """Django's adapters for `zone`, with `MomentLoader` for `timestamptz`; one map per zone, as Django keeps."""
    key = (id(template), zone)
    if key not in _ADAPTERS:
        adapters = adapt.AdaptersMap(template)
        adapters.register_loader("timestamptz", type("ZoneMomentLoader", (MomentLoader,), {"timezone": zone}))
        _ADAPTERS[key] = (template, adapters)  # the template kept alive: its id stays its own
    return _ADAPTERS[key][1]


def _begin(conn) -> str | None:
    """The BEGIN `conn` owes the server before its next statement, or None: Django is in a transaction
    (`in_transaction`, kept by `DatabaseWrapper._set_autocommit`) and the server has none open yet."""
    if not getattr(conn, "in_transaction", False) or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return None
    # As psycopg words it: the isolation level and access mode configured on the connection.
    parts = ["BEGIN"]
    if conn.isolation_level is not None:
        parts.append(f"ISOLATION LEVEL {conn.isolation_level.name.replace('_', ' ')}")
    if conn.read_only is not None:
        parts.append("READ ONLY" if conn.read_only else "READ WRITE")
    if conn.deferrable is not None:
        parts.append("DEFERRABLE" if conn.deferrable else "NOT DEFERRABLE")
    return " ".join(parts)


def begin_if_due(conn) -> None:
    """Send the owed BEGIN on its own (before what psycopg sends without `Cursor.execute`)."""
    if (begin := _begin(conn)) is not None:
        with psycopg.ClientCursor(conn) as cursor:  # psycopg's own: it sends just what it is given
            cursor.execute(begin)


class Cursor(ClientBindingCursor):
    """Django's cursor (values bound on the client), which sends a transaction's BEGIN with its first statement."""

    def execute(self, query, params=None, **kwargs):
        begin = _begin(self.connection) if isinstance(query, str) else None
        if begin is None:
            if not isinstance(query, str):
                begin_if_due(self.connection)
            return super().execute(query, params, **kwargs)
        super().execute(f"{begin}; {query}", params, **kwargs)
        self.nextset()  # the statement's own result, as if it had been sent alone
        return self

    def executemany(self, query, params_seq, **kwargs):
        begin_if_due(self.connection)
        return super().executemany(query, params_seq, **kwargs)

    def copy(self, statement, params=None, **kwargs):
        begin_if_due(self.connection)
        return super().copy(statement, params, **kwargs)

    def stream(self, query, params=None, **kwargs):
        begin_if_due(self.connection)
        return super().stream(query, params, **kwargs)


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        if params.get("cursor_factory") is ClientBindingCursor:
            params["cursor_factory"] = Cursor
        if "context" in params:
            params["context"] = _adapters(params["context"], self.timezone)
        return params

    def _deferring(self) -> bool:
        # Only the client-binding cursor can put two statements in one message.
        return self.connection is not None and self.connection.cursor_factory is Cursor

    def _set_autocommit(self, autocommit):
        if not self._deferring():
            return super()._set_autocommit(autocommit)
        # psycopg stays in autocommit mode; the cursor opens the transaction Django asks for (see the module).
        with self.wrap_database_errors:
            if not self.connection.autocommit:
                self.connection.autocommit = True
            self.connection.in_transaction = not autocommit
        return None

    def create_cursor(self, name=None):
        if name is not None and self._deferring():
            begin_if_due(self.connection)  # a named cursor is declared by psycopg, not through Cursor.execute
        return super().create_cursor(name)

    def close_if_health_check_failed(self):
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if not self._idle_and_open():
            self.close()
        self.health_check_done = True

    def _idle_and_open(self) -> bool:
        pgconn = self.connection.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        if pgconn.transaction_status != pq.TransactionStatus.IDLE:  # not between requests: ask, as Django would
            return self.is_usable()
        try:
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
            said_something = bool(poller.poll(0))
        except (OSError, ValueError, self.Database.Error):
            return False
        # A notice or a parameter change also makes the socket readable: then ask the server, as Django would.
        return self.is_usable() if said_something else True
