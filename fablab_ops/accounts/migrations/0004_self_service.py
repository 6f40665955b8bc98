"""Learner self-service: school or organisation, e-mail verification, API tokens that always have a digest.

Accounts that exist before this migration are taken as verified (they were made by
staff or before sign-up asked for verification); new sign-ups start unverified.
A token saved by the old admin form had an empty digest: it could never be used
(its secret was never made), so it is removed before the database starts refusing
such rows.
"""

import django.db.models.functions.text
import django.db.models.lookups
from django.db import migrations, models
from django.db.models.functions import Length
from django.utils import timezone


def verify_existing_accounts(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    User.objects.filter(email_verified_at__isnull=True).update(email_verified_at=timezone.now())


def remove_tokens_without_digest(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    ApiToken.objects.annotate(digest_length=Length("digest")).exclude(digest_length=64).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_notification_outbox"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="organisation",
            field=models.CharField(blank=True, max_length=200, verbose_name="trường hoặc tổ chức"),
        ),
        migrations.AddField(
            model_name="user",
            name="email_verified_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="email xác nhận lúc"),
        ),
        migrations.RunPython(verify_existing_accounts, migrations.RunPython.noop),
        migrations.RunPython(remove_tokens_without_digest, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.CheckConstraint(
                condition=django.db.models.lookups.Exact(django.db.models.functions.text.Length("digest"), 64),
                name="apitoken_digest_is_sha256",
            ),
        ),
    ]
