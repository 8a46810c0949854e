"""Signal-run vocabulary and the screen's fixed parameters."""

from __future__ import annotations

from django.db import models


class SignalRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SignalTrigger(models.TextChoices):
    BEAT = "beat", "Nightly schedule"
    ADMIN = "admin", "Admin"
    COMMAND = "command", "Command line"


# A product-lot cluster: at least this many events of one category in one lot ...
LOT_CLUSTER_MIN_EVENTS = 3
# ... whose onsets lie at most this many days apart (last onset - first onset <= 30).
LOT_CLUSTER_DAYS = 30

# The Celery names of the tasks (signals.tasks registers them; the admin publishes by name).
NIGHTLY_RUN_TASK = "signals.nightly_run"
REQUESTED_RUN_TASK = "signals.run"
