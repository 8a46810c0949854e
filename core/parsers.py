"""Request body parsers for the API that refuse what PostgreSQL cannot store or Python cannot walk.

A JSON string may spell a NUL (``"\\u0000"``) or a lone surrogate (``"\\ud800"``). PostgreSQL text
can hold neither, and a surrogate echoed in an error message ("... is not a valid choice") cannot even
be encoded as UTF-8 for the response. A body nested thousands of levels deep makes Python's json module
(and every recursive walk after it) raise RecursionError. These parsers refuse all three before any
view, serializer or lookup sees the data, so no field needs its own check: 400 with the API's error
body for a body that cannot be parsed, {"type": "client_error", "errors": [{"code": "parse_error",
"detail": ..., "attr": <where: "sex", "strata.1">}]}. Query strings, paths, headers and the admin's
form bodies get the same refusal from core.middleware.RequestGuardMiddleware.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError

# How deep a JSON body may nest. The API's bodies are flat objects whose values are at most lists of
# strings (depth 2); the margin is for clients that send a little more structure than is read.
MAX_JSON_DEPTH = 20

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
NESTED_SEPARATOR = "."  # drf-standardized-errors' attr of a nested field: "outcomes.0"


class UnstorableText(ParseError):
    """A body that cannot be taken as it is, with ``attr`` naming where (core.api.errors reports it)."""

    def __init__(self, detail: str, attr: str):
        super().__init__(detail)
        self.attr = attr


def unstorable_problem(text: str) -> str | None:
    """Return what is wrong when ``text`` holds a NUL or a lone surrogate, else None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "Text may not contain a NUL character (U+0000)."
    return (
        f"Text may not contain a lone surrogate (U+{ord(found.group()):04X}); encode characters outside the "
        "Basic Multilingual Plane as a pair of \\u escapes or as UTF-8."
    )


def printable_name(name: object) -> str:
    """Return ``name`` as text safe to echo in a response (unstorable characters become U+FFFD)."""
    return _UNSTORABLE.sub("\ufffd", str(name))


def _items(value) -> Iterator[tuple[object, object]]:
    if isinstance(value, QueryDict):
        return ((key, item) for key, items in value.lists() for item in items)
    if isinstance(value, dict):
        return iter(value.items())
    return enumerate(value)


def refuse_unstorable(data, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise a 400 (ParseError) for the first unstorable string (value or key) or a level past ``max_depth``.

    Walks without recursion, so the check itself cannot run out of stack.
    """
    stack: list[tuple[object, int, tuple]] = [(data, 0, ())]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            problem = unstorable_problem(value)
            if problem:
                _fail(path, problem)
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise ParseError(f"JSON parse error - the body nests deeper than {max_depth} levels.")
            children = []
            for key, item in _items(value):
                if isinstance(key, str) and (problem := unstorable_problem(key)):
                    _fail((*path, key), problem)
                children.append((item, depth + 1, (*path, key)))
            stack.extend(reversed(children))  # report the first offender in document order


def _fail(path: tuple, message: str) -> None:
    attr = NESTED_SEPARATOR.join(printable_name(part) for part in path) or "non_field_errors"
    raise UnstorableText(f"{attr}: {message}" if path else message, attr)


class RegistryJSONParser(parsers.JSONParser):
    """DRF's JSONParser, refusing deep nesting, NULs and lone surrogates (see the module docstring)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            # json's C scanner gives up at the interpreter's recursion limit (about 1000 levels).
            raise ParseError(f"JSON parse error - the body nests deeper than {MAX_JSON_DEPTH} levels.") from exc
        refuse_unstorable(data)
        return data


class RegistryFormParser(parsers.FormParser):
    """DRF's FormParser, refusing NULs in field names and values (undecodable bytes arrive as U+FFFD)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        refuse_unstorable(data)
        return data


class RegistryMultiPartParser(parsers.MultiPartParser):
    """DRF's MultiPartParser, refusing NULs in field names and values."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        refuse_unstorable(parsed.data)
        return parsed
