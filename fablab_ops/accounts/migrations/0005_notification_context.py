"""Notifications are rendered by the worker from their kind and a stored context of references."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_self_service")]

    operations = [
        migrations.AddField(
            model_name="notification", name="context", field=models.JSONField(blank=True, editable=False, null=True),
        ),
    ]
