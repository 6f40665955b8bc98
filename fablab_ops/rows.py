"""Model instances from hand-written SQL, for the few statements on the hottest paths.

Composing a query with the ORM costs more CPU than PostgreSQL spends answering a short one; on the paths every
booking, cancellation, scan and API call takes, the statement is written out once instead, its columns named
from the models (`columns`), and each row turned back into instances as the ORM would (`instances`), with the
database's converters applied (SQLite, the laptop demo, returns moments as text).
"""

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
    found, offset = [], 0
    for model in models:
        fields = model._meta.concrete_fields
        values = list(row[offset:offset + len(fields)])
        offset += len(fields)
        if values[[f.primary_key for f in fields].index(True)] is None:
            found.append(None)
            continue
        key = (connection.vendor, model)
        if key not in _CONVERTED:
            _CONVERTED[key] = _converted(model)
        for index, field in _CONVERTED[key]:
            values[index] = value(field, values[index])
        found.append(model.from_db(DEFAULT_DB_ALIAS, [f.attname for f in fields], values))
    return found
