from fablab_ops.celery import app
from fablab_ops.machines import services


@app.task
def mark_silent_machines_offline() -> int:
    return services.mark_silent_machines_offline()
