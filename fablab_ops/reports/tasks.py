from fablab_ops.celery import app
from fablab_ops.reports import delivery


@app.task
def send_last_months_report() -> bool:
    return delivery.send_monthly_report(delivery.services.last_month())
