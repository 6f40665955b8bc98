from dataclasses import asdict

from fablab_ops.celery import app
from fablab_ops.privacy import retention


@app.task
def apply_retention() -> dict:
    """Daily (Celery beat): warn and anonymise inactive learners, delete what outlived its period."""
    return asdict(retention.apply())
