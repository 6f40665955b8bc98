"""Model instances from hand-written SQL, for the few statements on the hottest paths.

Composing a query with the ORM costs more CPU than PostgreSQL spends answering a short one; on the paths every
booking, cancellation, scan and API call takes, the statement is written out once instead, its columns named
from the models (`columns`), and each row turned back into instances as the ORM would (`instances`).
"""

from django.db import DEFAULT_DB_ALIAS


def columns(model, alias: str) -> str:
    """Every concrete column of `model`, qualified by `alias`, in the model's field order."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def instances(row, *models) -> list:
    """Split a row read with `columns(models[0], …), columns(models[1], …), …` into one instance per model;
    None for a model whose primary key is NULL (an outer join that found nothing)."""
    found, offset = [], 0
    for model in models:
        fields = model._meta.concrete_fields
        values = row[offset:offset + len(fields)]
        offset += len(fields)
        pk = values[[f.primary_key for f in fields].index(True)]
        found.append(None if pk is None else model.from_db(DEFAULT_DB_ALIAS, [f.attname for f in fields], values))
    return found
