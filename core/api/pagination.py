"""Stable cursor pagination: pages never skip or repeat rows while data is being entered."""

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class RegistryCursorPagination(CursorPagination):
    ordering = "-id"  # unique and immutable: the cursor stays valid as rows are added
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        # DRF silently falls back to the default on ?page_size=abc; a typo deserves an answer.
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: ["A whole number of at least 1."]}, code="invalid")
        return min(int(raw), self.max_page_size)

    def decode_cursor(self, request):
        if request.query_params.get(self.cursor_query_param) == "":
            return None
        cursor = super().decode_cursor(request)
        # The position is an id (ordering is by id): anything else would reach the SQL as a bad integer.
        if (
            cursor is not None
            and cursor.position is not None
            and not (cursor.position.isascii() and cursor.position.isdigit())
        ):
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = f"Rows per page (default {self.page_size}, at most {self.max_page_size})."
        return parameters
