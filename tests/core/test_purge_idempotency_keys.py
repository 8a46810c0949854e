"""Idempotency keys are remembered for their retention, then purged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import IdempotencyRecord
from core.tasks import purge_idempotency_keys

pytestmark = pytest.mark.django_db


def test_it_deletes_only_keys_past_their_retention(alice, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    old = IdempotencyRecord.objects.create(user=alice, key="old", method="POST", path="/x", request_hash="h")
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyRecord.objects.create(user=alice, key="fresh", method="POST", path="/x", request_hash="h")
    assert purge_idempotency_keys() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]
