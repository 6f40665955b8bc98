from celery import shared_task

from fablab_ops.reports import delivery


@shared_task
def send_last_months_report() -> bool:
    return delivery.send_monthly_report(delivery.services.last_month())
