"""The Celery application, wired as cookiecutter-django does it."""

import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("registry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger(__name__)
if app.conf.task_always_eager:
    log.warning("No CELERY_BROKER_URL configured: Celery tasks run in-process (eager mode).")
