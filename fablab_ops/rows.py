"""Statements not composed by the ORM at every call, for the few on the hottest paths.

Composing a query with the ORM costs more CPU than PostgreSQL spends answering a short one. On the paths every
booking, cancellation and scan takes, the statement is written out once instead, its columns named from the
models (`columns`), and each row turned back into instances as the ORM would (`instances`), with the
database's converters applied (SQLite, the laptop demo, returns moments as text). Where the ORM's composition
is worth keeping (the API token's lookup with the hooks' annotations, the monthly report's aggregates), it is
done once per process and its SQL run again with new values (`ComposedOnce`). A transaction's writes travel
to PostgreSQL together, the last of them with its COMMIT (`Writes`).
"""

from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connection, transaction


def columns(model, alias: str) -> str:
    """Every concrete column of `model`, qualified by `alias`, in the model's field order."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def value(field, raw):
    """A value read by hand-written SQL, as the ORM would hand it over for `field`."""
    col = field.get_col(field.model._meta.db_table)
    for converter in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
        raw = converter(raw, col, connection)
    return raw


def moment(when):
    """A moment as a parameter of hand-written SQL, as the ORM would pass it."""
    return connection.ops.adapt_datetimefield_value(when)


def _converted(model) -> list[tuple[int, object]]:
    return [(index, field) for index, field in enumerate(model._meta.concrete_fields)
            if connection.ops.get_db_converters(field.get_col(model._meta.db_table))
            or field.get_col(model._meta.db_table).get_db_converters(connection)]


_CONVERTED: dict = {}


def instances(row, *models) -> list:
    """Split a row read with `columns(models[0], …), columns(models[1], …), …` into one instance per model;
    None for a model whose primary key is NULL (an outer join that found nothing)."""
    values, offset = list(row), 0
    for model in models:
        key = (connection.vendor, model)
        if key not in _CONVERTED:
            _CONVERTED[key] = _converted(model)
        for index, field in _CONVERTED[key]:
            values[offset + index] = value(field, values[offset + index])
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
    a list of varying length). Compiled per database vendor, on first use, when every app is ready.
    """

    def __init__(self, compose, **parameters: type):
        self.compose, self.parameters = compose, parameters
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
            self._compiled[connection.vendor] = (sql, params, slots, compiler, converters)
        return self._compiled[connection.vendor]

    def names(self) -> list[str]:
        """The names of the columns, as the queryset's values() would key them."""
        compiler = self._statement()[3]
        return [alias for _expression, _sql, alias in compiler.select]

    def rows(self, **values) -> list[tuple]:
        sql, params, slots, compiler, converters = self._statement()
        params = params.copy()
        for name, value in values.items():
            for slot in slots[name]:
                params[slot] = self._adapted(value)
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
    return [field.get_db_prep_save(field.pre_save(instance, adding), connection) for field in fields]


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
        self._queued: list[tuple[str, list, Callable | None]] = []

    @classmethod
    @contextmanager
    def atomic(cls):
        with transaction.atomic():
            writes = cls()
            yield writes
            writes.send(commit=True)

    def add(self, sql: str, params: list, then: Callable[[list[tuple]], object] | None = None) -> None:
        self._queued.append((sql, list(params), then))

    def insert(self, instance) -> None:
        """Queue `instance`'s INSERT, its primary key included; one without a key yet is inserted now, with
        what is queued before it (what follows may need its key)."""
        meta = type(instance)._meta
        if instance.pk is None:
            self.send()
            instance.save(force_insert=True)
            return
        fields = meta.concrete_fields
        self.add(f'INSERT INTO {connection.ops.quote_name(meta.db_table)} ({column_names(fields)}) '  # noqa: S608
                 f'VALUES ({", ".join(["%s"] * len(fields))})', saved_values(instance, fields, adding=True))
        instance._state.adding, instance._state.db = False, connection.alias

    def update(self, instance, fields: list[str]) -> None:
        """Queue an UPDATE of `fields` of `instance`, by its primary key, as `save(update_fields=…)` writes
        them (a field that stamps the time on save, `auto_now`, does so here too)."""
        meta = type(instance)._meta
        chosen = [meta.get_field(name) for name in fields]
        assignments = ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in chosen)
        self.add(f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {assignments} "  # noqa: S608 - model names
                 f"WHERE {connection.ops.quote_name(meta.pk.column)} = %s",
                 [*saved_values(instance, chosen, adding=False), instance.pk])

    def read(self, sql: str, params: list) -> list[tuple]:
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
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Bound on the client (psycopg's ClientCursor, as Django uses it), so several statements with
                # values can share one message; each has its own result.
                cursor.execute("; ".join(sql for sql, _params, _then in queued),
                               [value for _sql, params, _then in queued for value in params])
                for index, (_sql, _params, then) in enumerate(queued):
                    if index:
                        cursor.nextset()
                    if then is not None:
                        found.append((then, cursor.fetchall()))
            else:
                for sql, params, then in queued:
                    cursor.execute(sql, params)
                    if then is not None:
                        found.append((then, cursor.fetchall()))
        for then, rows in found:
            then(rows)


def _outermost_transaction() -> bool:
    """Inside one atomic block, no savepoint, nothing marked for rollback: Django commits when it ends."""
    return (connection.in_atomic_block and len(connection.atomic_blocks) == 1 and not connection.savepoint_ids
            and not connection.needs_rollback)
