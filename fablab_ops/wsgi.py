import os

from django.core.wsgi import get_wsgi_application

from fablab_ops.celery import warm_up

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fablab_ops.settings")
application = get_wsgi_application()
warm_up()
