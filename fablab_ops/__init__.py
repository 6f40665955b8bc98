"""fablab-ops. The Celery app lives in `fablab_ops.celery` and is loaded by what queues or runs tasks (the tasks
modules, `celery -A fablab_ops`, the web process's warm-up), not here: every other process (the MQTT ingest, a
management command) starts without it.
"""
