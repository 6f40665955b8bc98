"""Statements not composed by the ORM at every call, for the few on the hottest paths.

Composing a query with the ORM costs more CPU than PostgreSQL spends answering a short one. On the paths every
booking, cancellation and scan takes, the statement is written out once instead, its columns named from the
models (`columns`), and each row turned back into instances as the ORM would (`instances`), with the
database's converters applied (SQLite, the laptop demo, returns moments as text). Where the ORM's composition
is worth keeping (the API token's lookup with the hooks' annotations, the monthly report's aggregates), it is
done once per process and its SQL run again with new values (`ComposedOnce`).
"""

from datetime import UTC, date, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connection


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
