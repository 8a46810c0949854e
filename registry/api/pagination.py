"""Stable cursor pagination: pages never skip or repeat rows while data is being entered."""

from rest_framework.pagination import CursorPagination


class RegistryCursorPagination(CursorPagination):
    ordering = "-id"  # unique and immutable: the cursor stays valid as rows are added
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
