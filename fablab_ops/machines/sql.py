"""Set-based writes the ORM spells slowly, for the ingest's batches.

Django's `bulk_update` builds a CASE expression per field and row; for the ingest,
which updates every machine of a batch at once, that cost more than the rest of
the batch. Here the new values travel as one array per column instead.
"""

from django.db import connection, models


def update_many(model: type[models.Model], objects: list[models.Model], fields: list[str]) -> None:
    """Write `fields` of `objects` (already saved, with their primary keys) in one statement."""
    if not objects:
        return
    if connection.vendor != "postgresql":
        for obj in objects:
            model.objects.filter(pk=obj.pk).update(**{name: getattr(obj, name) for name in fields})
        return
    quote = connection.ops.quote_name
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    pk_type = meta.pk.db_type(connection)
    assignments = ", ".join(f"{quote(c.column)} = v.{quote(c.column)}" for c in columns)
    arrays = ", ".join(f"%s::{c.cast_db_type(connection)}[]" for c in columns)
    names = ", ".join(quote(c.column) for c in columns)
    # Only the model's own table and column names are formatted in; every value is a parameter.
    sql = (f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608
           f"FROM unnest(%s::{pk_type}[], {arrays}) AS v(pk, {names}) WHERE t.{quote(meta.pk.column)} = v.pk")
    values = [[obj.pk for obj in objects]] + [[getattr(obj, c.attname) for obj in objects] for c in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
