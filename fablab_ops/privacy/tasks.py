from dataclasses import asdict

from celery import shared_task

from fablab_ops.privacy import retention


@shared_task
def apply_retention() -> dict:
    """Daily (Celery beat): warn and anonymise inactive learners, delete what outlived its period."""
    return asdict(retention.apply())
