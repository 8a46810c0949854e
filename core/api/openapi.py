"""OpenAPI generation fixes, so the schema describes what the API actually answers.

drf-standardized-errors' AutoSchema is right about the shape of errors but misses a few
of the things this API does: errors raised by the services' full_clean() (code
"invalid" on any writable field, "unique" on ids), ?page_size= errors, filters that
treat an empty value as "not given", and the real attr of a list item's error
("outcomes.0", documented as "outcomes.INDEX"). Found by tests/api/test_api_schemathesis.py.
"""

from __future__ import annotations

import re

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from drf_standardized_errors.openapi import AutoSchema
from drf_standardized_errors.settings import package_settings
from rest_framework import serializers


class RegistryAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction=direction)
        # extend_schema(responses={422: ...}) on a create or update replaces the success
        # response too; keep the view's serializer as the 201/200 body.
        writes = direction == "response" and self.method in ("POST", "PUT", "PATCH")
        if writes and not any(str(code).startswith("2") for code in responses):
            code = "201" if self._is_create_operation() else "200"
            responses[code] = self._get_response_for_code(self._get_serializer(), code, direction=direction)
        return responses

    def _get_filter_parameters(self):
        # django-filter skips a filter given an empty value (the browsable API's filter form sends them all).
        return [_empty_allowed(parameter) for parameter in super()._get_filter_parameters()]

    def _get_pagination_parameters(self):
        return [_empty_allowed(parameter) for parameter in super()._get_pagination_parameters()]

    def _get_format_parameters(self):
        # DRF's ?format= is ignored when empty, like a filter.
        return [_empty_allowed(parameter) for parameter in super()._get_format_parameters()]

    def _should_add_validation_error_response(self) -> bool:
        return super()._should_add_validation_error_response() or bool(self._page_size_param())

    def _get_validation_error_codes_by_field(self, data_fields):
        codes = super()._get_validation_error_codes_by_field(data_fields)
        if self.method in ("POST", "PUT", "PATCH") and getattr(self.view, "save_service", None):
            # The services validate with full_clean(): the model's clean() may refuse any field
            # (code "invalid"), a cross-field rule is a non-field error, an id may be taken ("unique").
            serializer = self.get_request_serializer()
            if isinstance(serializer, type):
                serializer = serializer()
            if isinstance(serializer, serializers.Serializer):
                for name, field in serializer.fields.items():
                    if not field.read_only:
                        codes[name].add("invalid")
                        if _is_unique(serializer, field):
                            codes[name].add("unique")
                codes["non_field_errors"].add("invalid")
        page_size = self._page_size_param()
        if page_size:
            codes[page_size].add("invalid")
        return codes

    def _page_size_param(self) -> str | None:
        if self.method != "GET" or not self._is_list_view():
            return None
        paginator = self._get_paginator()
        return getattr(paginator, "page_size_query_param", None) if paginator else None


def _empty_allowed(parameter: dict) -> dict:
    if parameter.get("in") == "query" and not parameter.get("required"):
        parameter = {**parameter, "allowEmptyValue": True}
    return parameter


def _is_unique(serializer: serializers.Serializer, field: serializers.Field) -> bool:
    model = getattr(getattr(serializer, "Meta", None), "model", None)
    if model is None or not field.source or "." in field.source:
        return False
    try:
        model_field = model._meta.get_field(field.source)
    except FieldDoesNotExist:  # a serializer-only field
        return False
    return isinstance(model_field, models.Field) and bool(model_field.unique) and not model_field.primary_key


def postprocess_list_item_error_attrs(result, generator, request, public):
    """Return the schema with list items' error attrs as patterns ("outcomes.0", not "outcomes.INDEX").

    drf-standardized-errors names a list item's error "outcomes.INDEX" in the schema but
    answers "outcomes.0"; an enum and a discriminator mapping on that name reject the real body.
    """
    index = package_settings.LIST_INDEX_IN_API_SCHEMA
    separator = package_settings.NESTED_FIELD_SEPARATOR

    def has_index(name) -> bool:
        return isinstance(name, str) and index in name.split(separator)

    for schema in result.get("components", {}).get("schemas", {}).values():
        attr = schema.get("properties", {}).get("attr")
        if isinstance(attr, dict) and any(has_index(name) for name in attr.get("enum") or []):
            sep = re.escape(separator)
            alternatives = [
                sep.join(r"\d+" if part == index else re.escape(part) for part in name.split(separator))
                for name in attr.pop("enum")
                if isinstance(name, str)
            ]
            attr["pattern"] = "^(?:" + "|".join(alternatives) + ")$"
        discriminator = schema.get("discriminator")
        if (
            isinstance(discriminator, dict)
            and discriminator.get("propertyName") == "attr"
            and any(has_index(name) for name in discriminator.get("mapping", {}))
        ):
            # A discriminator needs the exact value; the oneOf alone still tells the items apart.
            del schema["discriminator"]
    return result
