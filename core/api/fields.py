"""Serializer fields of the API that take exactly the JSON types the schema documents."""

from __future__ import annotations

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A text field that refuses a JSON number or boolean instead of turning it into text.

    DRF's CharField stores 0 as "0"; the schema says "string", so a client sending a number has a
    bug the API should name (a 400 on the field), not hide.
    """

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
