"""Statements not composed by the ORM at every call, for the few on the hottest paths.

Composing a query with the ORM costs more CPU than PostgreSQL spends answering a short one. On the paths every
booking, cancellation and scan takes, the statement is written out once instead, its columns named from the
models (`columns`), and each row turned back into instances as the ORM would (`instances`), with the
database's converters applied (SQLite, the laptop demo, returns moments as text). Where the ORM's composition
is worth keeping (the API token's lookup with the hooks' annotations, the monthly report's aggregates), it is
done once per process and its SQL run again with new values (`ComposedOnce`). A transaction's writes travel
to PostgreSQL together, the last of them with its COMMIT (`Writes`); those that run on every seat change are
planned once per connection (`Prepared`).
"""

import hashlib
import re
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction


def columns(model, alias: str) -> str:
    """Every concrete column of `model`, qualified by `alias`, in the model's field order."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def _database():
    """The connection itself: `django.db.connection` is a proxy that looks the thread's connection up again at
    each attribute, and the fields' conversions below ask it for `ops` once per value."""
    return connections[DEFAULT_DB_ALIAS]


def moment(when):
    """A moment as a parameter of hand-written SQL, as the ORM would pass it."""
    return connection.ops.adapt_datetimefield_value(when)


def _converted(model) -> list[tuple[int, object, list]]:
    """The columns of `model` the database's values need converting for, as the ORM converts them: (index among
    the concrete fields, the column, its converters)."""
    found = []
    for index, field in enumerate(model._meta.concrete_fields):
        col = field.get_col(model._meta.db_table)
        if converters := connection.ops.get_db_converters(col) + col.get_db_converters(connection):
            found.append((index, col, converters))
    return found


_CONVERTED: dict = {}


def instances(row, *models) -> list:
    """Split a row read with `columns(models[0], …), columns(models[1], …), …` into one instance per model;
    None for a model whose primary key is NULL (an outer join that found nothing)."""
    values, offset, database = list(row), 0, _database()
    for model in models:
        key = (database.vendor, model)
        if key not in _CONVERTED:
            _CONVERTED[key] = _converted(model)
        for index, col, converters in _CONVERTED[key]:
            raw = values[offset + index]
            for converter in converters:
                raw = converter(raw, col, database)
            values[offset + index] = raw
        offset += len(model._meta.concrete_fields)
    return from_values(values, *models)


class ComposedOnce:
    """An ORM query composed once per process, then run with new values: for statements run on every request
    (the API token's lookup) or many at once (the monthly report), where composing and compiling cost more
    CPU than PostgreSQL spends answering.

    `compose(**parameters)` returns a `values()`/`values_list()` queryset built from the named parameters; it
    is called once with a stand-in for each (`ComposedOnce(compose, digest=str, start=datetime)` names them
    and their types), its SQL kept, and every stand-in found among the compiled parameters. `rows(**values)`
    runs that SQL with the real values in their places and returns the rows as the ORM would (converters
    applied). A parameter must reach the SQL as it is given (the queryset may not compute with it, nor take
    a list of varying length). Compiled per database vendor, on first use, when every app is ready. With
    `prepare_as`, PostgreSQL plans it once per connection too (`Prepared`): for a statement whose best plan does
    not depend on its values (a lookup by a unique key), never for ranges whose size decides the plan.
    """

    def __init__(self, compose, *, prepare_as: str | None = None, **parameters: type):
        self.compose, self.parameters, self.prepare_as = compose, parameters, prepare_as
        self._compiled: dict = {}

    @staticmethod
    def _stand_in(kind: type, index: int):
        if kind is str:
            return f"\x00stand-in {index}\x00"
        if kind is datetime:
            return datetime(1901, 2, 3, tzinfo=UTC) + timedelta(seconds=index)
        if kind is date:
            return date(1901, 2, 3) + timedelta(days=index)
        if kind is int:
            return -987_654_000 - index
        raise TypeError(f"no stand-in for {kind!r}")

    @staticmethod
    def _adapted(value):
        """A value as Django hands it to the driver (SQLite's driver takes moments and dates as text)."""
        if isinstance(value, datetime):
            return connection.ops.adapt_datetimefield_value(value)
        if isinstance(value, date):
            return connection.ops.adapt_datefield_value(value)
        return value

    def _statement(self):
        if connection.vendor not in self._compiled:
            stand_ins = {name: self._stand_in(kind, index)
                         for index, (name, kind) in enumerate(self.parameters.items())}
            compiler = self.compose(**stand_ins).query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            params = list(params)
            slots = {name: [i for i, param in enumerate(params) if param == self._adapted(stand_in)]
                     for name, stand_in in stand_ins.items()}
            if missing := [name for name, found in slots.items() if not found]:
                raise ValueError(f"parameters not found in the compiled query: {missing}")
            converters = compiler.get_converters([expression for expression, _sql, _alias in compiler.select])
            prepared = (Prepared(sql, self.prepare_as) if self.prepare_as and connection.vendor == "postgresql"
                        else None)
            self._compiled[connection.vendor] = (sql, params, slots, compiler, converters, prepared)
        return self._compiled[connection.vendor]

    def names(self) -> list[str]:
        """The names of the columns, as the queryset's values() would key them."""
        compiler = self._statement()[3]
        return [alias for _expression, _sql, alias in compiler.select]

    def rows(self, **values) -> list[tuple]:
        sql, params, slots, compiler, converters, prepared = self._statement()
        params = params.copy()
        for name, value in values.items():
            for slot in slots[name]:
                params[slot] = self._adapted(value)
        if prepared is not None:
            found = Writes().read(prepared, params)
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                found = cursor.fetchall()
        if converters:
            found = [tuple(row) for row in compiler.apply_converters(found, converters)]
        return found


def columns_of(model, path: str = "") -> list[str]:
    """`values_list` names of every concrete column of `model` reached by `path` ("user__"), in field order."""
    return [f"{path}{field.name}" for field in model._meta.concrete_fields]


def from_values(values, *models) -> list:
    """Split a row of converted values read with `columns_of(models[0]), columns_of(models[1], …), …` into one
    instance per model; None for a model whose primary key is NULL (an outer join that found nothing)."""
    found, offset = [], 0
    for model in models:
        fields = model._meta.concrete_fields
        part = values[offset:offset + len(fields)]
        offset += len(fields)
        if part[[f.primary_key for f in fields].index(True)] is None:
            found.append(None)
        else:
            found.append(model.from_db(DEFAULT_DB_ALIAS, [f.attname for f in fields], list(part)))
    return found


def column_names(fields) -> str:
    """The fields' columns, quoted, for an INSERT written out."""
    return ", ".join(connection.ops.quote_name(field.column) for field in fields)


def saved_values(instance, fields, *, adding: bool) -> list:
    """`instance`'s values for `fields` as `save()` would send them (`auto_now` and `auto_now_add` stamped)."""
    database = _database()
    return [field.get_db_prep_save(field.pre_save(instance, adding), database) for field in fields]


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")
# PostgreSQL's answers that say a prepared statement is gone (26000) or no longer fits its tables after a schema
# change (0A000, "cached plan must not change result type").
_STALE_PREPARED = {"26000", "0A000"}


class Prepared:
    """A hand-written statement on a seat change's path, which PostgreSQL parses and plans once per connection.

    Planning is most of what PostgreSQL spends on a seat change's statements: on the 2-core machine the benches
    run on, locking a session with its course and lab costs the server about 0.45 ms planned afresh and 0.11 ms
    prepared; counting its bookings 0.28 ms and 0.10 ms. Through `Writes`, the statement is sent as
    `EXECUTE name(values)`, the values bound on the client as Django binds them, preceded in the same message by
    its `PREPARE` the first time on a connection. `sql` is written as for Django's cursor (`%s` or `%(name)s`
    placeholders, `%%` for a percent sign); PostgreSQL infers each value's type from where it stands. The name
    carries a digest of the text, so a changed statement is prepared anew; a statement PostgreSQL no longer
    knows (a connection reset, a changed table) fails once, and is prepared again on the next message.
    Elsewhere than PostgreSQL the statement runs as written, or as `elsewhere` words it for SQLite.
    """

    def __init__(self, sql: str, label: str, *, elsewhere: str | None = None):
        self.sql, self.elsewhere = sql, sql if elsewhere is None else elsewhere
        # PostgreSQL cuts names at 63 bytes: the label is cut first, so the digest always stays whole.
        self.name = f"{label[:52]}_{hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:10]}"
        order: list = []
        names: dict[str, int] = {}

        def numbered(match):
            if match.group(0) == "%%":
                return "%%"  # left for the client's binding of the whole message, which makes it one %
            if match.group(1) is None:
                order.append(len(order))
                return f"${len(order)}"
            if match.group(1) not in names:
                order.append(match.group(1))
                names[match.group(1)] = len(order)
            return f"${names[match.group(1)]}"

        self.prepare = f"PREPARE {self.name} AS {_PLACEHOLDER.sub(numbered, sql)}"
        self._order = order
        arguments = ", ".join(["%s"] * len(order))
        self.execute = f"EXECUTE {self.name}({arguments})" if order else f"EXECUTE {self.name}"

    def values(self, params) -> list:
        """The statement's values in its placeholders' order."""
        return [params[key] for key in self._order]


def _prepared_on(raw) -> set[str]:
    """The statements prepared on a psycopg connection (a new connection starts with none)."""
    try:
        return raw.prepared_statements
    except AttributeError:
        raw.prepared_statements = set()
        return raw.prepared_statements


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL answered with (Django wraps psycopg's error), or None when it did not answer."""
    while error is not None:
        if (state := getattr(error, "sqlstate", None)) is not None:
            return state
        error = error.__cause__
    return None


class Writes:
    """The writes a transaction has decided on, sent to PostgreSQL together, one message for the lot.

    Each round trip to PostgreSQL costs the request's thread and the server more CPU than a short INSERT itself
    (about 0.1 ms on each side on the 2-core machine the benches run on), and a seat change holds its session's
    lock across all of them: a booking's row, its session's longest waiting list, its e-mail's outbox row and
    the COMMIT travel in one message. The statements run in the order they were queued, in the transaction,
    each seeing those before it. A queued write is not in the database yet: whatever reads rows it may change
    goes through `read` (which sends what is queued with a statement whose rows are needed now), or comes after
    `send`. A statement whose rows are wanted later is queued with `then`, called with them once sent.

    `Writes.atomic()` opens the transaction with its Writes and sends what is left when the block ends well; on
    PostgreSQL, when it is the outermost transaction, that last message ends with COMMIT (Django's commit then
    finds nothing left to commit), so the lock a seat change holds is let go a round trip earlier. Nothing may
    run in the transaction after that message: that is why the block owns both. Elsewhere than PostgreSQL
    (SQLite, the laptop demo) the statements run one by one and Django commits.
    """

    def __init__(self):
        self._queued: list[tuple[str | Prepared, list | dict, Callable | None]] = []

    @classmethod
    @contextmanager
    def atomic(cls):
        with transaction.atomic():
            writes = cls()
            yield writes
            writes.send(commit=True)

    def add(self, sql: str | Prepared, params: list | dict,
            then: Callable[[list[tuple]], object] | None = None) -> None:
        """Queue a statement: text with a list of values, or a `Prepared` with its values (a dict when it names
        them)."""
        self._queued.append((sql, params if isinstance(params, dict) else list(params), then))

    def insert(self, instance) -> None:
        """Queue `instance`'s INSERT, its primary key included; one without a key yet is inserted now, with
        what is queued before it (what follows may need its key)."""
        model = type(instance)
        if instance.pk is None:
            self.send()
            instance.save(force_insert=True)
            return
        fields = model._meta.concrete_fields
        self.add(_insert_statement(model), saved_values(instance, fields, adding=True))
        instance._state.adding, instance._state.db = False, connection.alias

    def update(self, instance, fields: list[str]) -> None:
        """Queue an UPDATE of `fields` of `instance`, by its primary key, as `save(update_fields=…)` writes
        them (a field that stamps the time on save, `auto_now`, does so here too)."""
        statement, chosen = _update_statement(type(instance), tuple(fields))
        self.add(statement, [*saved_values(instance, chosen, adding=False), instance.pk])

    def read(self, sql: str | Prepared, params: list | dict) -> list[tuple]:
        """Send what is queued and `sql` after it; `sql`'s rows."""
        found = []
        self.add(sql, params, then=found.extend)
        self.send()
        return found

    def send(self, *, commit: bool = False) -> None:
        """Send what is queued, then hand each `then` its statement's rows. With `commit`, the transaction
        ends with the message when it is the outermost one on PostgreSQL (see the class)."""
        queued, self._queued = self._queued, []
        if commit and queued and connection.vendor == "postgresql" and _outermost_transaction():
            queued.append(("COMMIT", [], None))
        if not queued:
            return
        found = []
        database = _database()
        if database.vendor == "postgresql":
            _send_together(_kept_cursor(database), queued, found)
        else:
            with database.cursor() as cursor:
                for sql, params, then in queued:
                    cursor.execute(sql.elsewhere if isinstance(sql, Prepared) else sql, params)
                    if then is not None:
                        found.append((then, cursor.fetchall()))
        for then, rows in found:
            then(rows)


def _kept_cursor(database):
    """The cursor `Writes` sends with on `database`, handed out as Django's `cursor()` hands one out (the
    connection checked and opened first, then wrapped by Django's own `_prepare_cursor`, which logs the queries
    when Django logs them), but one per connection, kept: opening a cursor costs about as much CPU as binding a
    message's values, and each message's rows are read in full before the next is sent (`then` is called
    after), so one cursor is never asked for two messages at once."""
    database.close_if_health_check_failed()
    database.ensure_connection()
    raw = database.connection
    kept = getattr(raw, "writes_cursor", None)
    if kept is None or kept.closed:
        with database.wrap_database_errors:
            kept = raw.writes_cursor = database.create_cursor()
    return database._prepare_cursor(kept)


def _send_together(cursor, queued: list, found: list) -> None:
    """The queued statements as one message (values bound on the client, psycopg's ClientCursor, as Django binds
    them: several statements with values may then share a message, each with its own result). The PREPAREs a
    connection has not seen yet go first, so that they have run whatever fails after them."""
    raw = connection.connection
    known = _prepared_on(raw)
    heads = ["DEALLOCATE ALL"] if getattr(raw, "deallocate_first", False) else []
    new: list[str] = []
    parts, values = [], []
    for sql, params, _then in queued:
        if isinstance(sql, Prepared):
            if sql.name not in known and sql.name not in new:
                heads.append(sql.prepare)
                new.append(sql.name)
            parts.append(sql.execute)
            values.extend(sql.values(params))
        else:
            parts.append(sql)
            values.extend(params)
    try:
        cursor.execute("; ".join(heads + parts), values)
    except Exception as error:
        state = _sqlstate(error)
        if state in _STALE_PREPARED:
            known.clear()
            raw.deallocate_first = True
        elif state is not None:  # PostgreSQL answered: the message's head ran before whatever failed
            known.update(new)
            raw.deallocate_first = False
        raise
    known.update(new)
    raw.deallocate_first = False
    for _head in heads:
        cursor.nextset()
    for index, (_sql, _params, then) in enumerate(queued):
        if index:
            cursor.nextset()
        if then is not None:
            found.append((then, cursor.fetchall()))


_STATEMENTS: dict = {}


def _insert_statement(model) -> Prepared:
    key = ("insert", model)
    if key not in _STATEMENTS:
        fields, table = model._meta.concrete_fields, connection.ops.quote_name(model._meta.db_table)
        _STATEMENTS[key] = Prepared(f'INSERT INTO {table} ({column_names(fields)}) '  # noqa: S608 - model names
                                    f'VALUES ({", ".join(["%s"] * len(fields))})', f"insert_{model._meta.db_table}")
    return _STATEMENTS[key]


def _update_statement(model, fields: tuple[str, ...]) -> tuple[Prepared, list]:
    key = ("update", model, fields)
    if key not in _STATEMENTS:
        meta = model._meta
        chosen = [meta.get_field(name) for name in fields]
        assignments = ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in chosen)
        statement = Prepared(f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {assignments} "  # noqa: S608
                             f"WHERE {connection.ops.quote_name(meta.pk.column)} = %s", f"update_{meta.db_table}")
        _STATEMENTS[key] = (statement, chosen)
    return _STATEMENTS[key]


def _outermost_transaction() -> bool:
    """Inside one atomic block, no savepoint, nothing marked for rollback: Django commits when it ends."""
    return (connection.in_atomic_block and len(connection.atomic_blocks) == 1 and not connection.savepoint_ids
            and not connection.needs_rollback)
