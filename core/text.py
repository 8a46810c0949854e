"""Return whether text is safe to store as an identifier and safe to hand to a spreadsheet.

One home for "safe text" (DESIGN 4.9): identifiers and codes refuse control, bidi and
zero-width characters at input; free text keeps line breaks and tabs but loses every
other invisible character on export; every string cell a spreadsheet would evaluate as a
formula is neutralised (OWASP CSV injection guidance).
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.db.models import Func, TextField
from django.utils.deconstruct import deconstructible

# Unicode categories never legitimate inside an identifier or a code:
# Cc control (NUL, U+0001, DEL, C1), Cf format (bidi overrides and isolates, zero-width
# space/joiners, word joiner, BOM, soft hyphen), Cs lone surrogates, Co private use,
# Zl/Zp line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
# Free text may keep its line breaks and tabs.
_FREE_TEXT_KEEP = frozenset("\t\n\r")
# OWASP: a cell beginning with one of these is evaluated by Excel, LibreOffice or Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")

# The same unsafe characters as code point ranges, for PostgreSQL, whose regular expressions know
# no Unicode categories: the identifier CHECK constraints and the export SELECTs use them. Frozen
# (Python 3.11, Unicode 14: every Cc, Cf, Co, Zl and Zp code point but NUL, which PostgreSQL text
# cannot hold) rather than derived at import time, because migrations store the pattern and a newer
# Python's Unicode tables must not change a constraint behind their back. Python's validators
# refuse every one of them (tests/events/test_safe_identifiers.py), so the database never refuses
# what the field-level checks let through.
UNSAFE_CODEPOINT_RANGES: tuple[tuple[int, int], ...] = (
    (0x0001, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xE000, 0xF8FF),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F), (0xF0000, 0xFFFFD),
    (0x100000, 0x10FFFD),
)  # fmt: skip


def unsafe_character_class(*, allow: str = "") -> str:
    """Return a bracket expression matching one unsafe character (UNSAFE_CODEPOINT_RANGES) but those in ``allow``.

    Written with the characters themselves, not escapes, so Python's re and PostgreSQL's
    regular expressions read it alike whatever their escape rules (none of these characters
    is special inside brackets).
    """
    parts = []
    for start, end in UNSAFE_CODEPOINT_RANGES:
        pieces = [(start, end)]
        for cp in sorted(ord(char) for char in allow):
            pieces = [p for a, b in pieces for p in (((a, cp - 1), (cp + 1, b)) if a <= cp <= b else ((a, b),))]
        parts += [chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in pieces if a <= b]
    return "[" + "".join(parts) + "]"


def first_unsafe_character(value: str, *, allow: frozenset[str] = frozenset()) -> tuple[int, str] | None:
    """Return (position, character) of the first unsafe character in value, or None."""
    for index, char in enumerate(value):
        if char in allow:
            continue
        if unicodedata.category(char) in _UNSAFE_CATEGORIES:
            return index, char
    return None


def describe_character(char: str) -> str:
    """Return 'U+0001' plus the character's Unicode name when it has one."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name.lower()})" if name else "")


def unsafe_character_message(value: str, *, allow: frozenset[str] = frozenset()) -> str | None:
    """Return the user-facing message for value's first unsafe character, or None when it is clean."""
    found = first_unsafe_character(value, allow=allow)
    if found is None:
        return None
    index, char = found
    return (
        f"Contains an invisible or control character, {describe_character(char)}, at position {index + 1}. "
        "Identifiers and codes may hold only visible characters."
        if not allow
        else f"Contains an invisible or control character, {describe_character(char)}, at position {index + 1}."
    )


@deconstructible
class SafeIdentifierValidator:
    """Refuse control, bidi, zero-width and other invisible characters in an identifier or code."""

    code = "unsafe_character"

    def __call__(self, value) -> None:
        if not isinstance(value, str):
            return
        message = unsafe_character_message(value)
        if message:
            raise ValidationError(message, code=self.code)

    def __eq__(self, other) -> bool:
        return isinstance(other, SafeIdentifierValidator)

    def __hash__(self) -> int:
        return hash(type(self))


@deconstructible
class SafeFreeTextValidator:
    """Refuse invisible characters in free text, keeping tabs and line breaks."""

    code = "unsafe_character"

    def __call__(self, value) -> None:
        if not isinstance(value, str):
            return
        message = unsafe_character_message(value, allow=_FREE_TEXT_KEEP)
        if message:
            raise ValidationError(message, code=self.code)

    def __eq__(self, other) -> bool:
        return isinstance(other, SafeFreeTextValidator)

    def __hash__(self) -> int:
        return hash(type(self))


validate_safe_identifier = SafeIdentifierValidator()
validate_safe_free_text = SafeFreeTextValidator()


def strip_unsafe(value: str) -> str:
    """Return free text without control, bidi and zero-width characters (tabs and line breaks kept)."""
    if first_unsafe_character(value, allow=_FREE_TEXT_KEEP) is None:
        return value
    return "".join(
        char for char in value if char in _FREE_TEXT_KEEP or unicodedata.category(char) not in _UNSAFE_CATEGORIES
    )


def spreadsheet_cell(value):
    """Return value as a spreadsheet may receive it: strings cleaned and never evaluated as formulas.

    Numbers, dates and None pass through unchanged (they are data, not formulas). A string
    loses its invisible characters and, when it begins with a formula trigger, gains a
    leading apostrophe, which Excel and LibreOffice show as text and never evaluate.
    """
    if not isinstance(value, str):
        return value
    cleaned = strip_unsafe(value)
    if starts_like_formula(cleaned):
        return "'" + cleaned
    return cleaned


def starts_like_formula(text: str) -> bool:
    """Return whether a spreadsheet would evaluate ``text`` as a formula (it begins with a trigger)."""
    return text.startswith(FORMULA_TRIGGERS)


UNSAFE_IDENTIFIER_CLASS = unsafe_character_class()
UNSAFE_FREE_TEXT_CLASS = unsafe_character_class(allow="".join(_FREE_TEXT_KEEP))
# A leading formula trigger, captured; "-" goes last, where it is literal in both regex dialects.
FORMULA_TRIGGER_PATTERN = "^([" + "".join(t for t in FORMULA_TRIGGERS if t != "-") + "-])"
_SQL_TRIGGERS = ", ".join("'" + trigger + "'" for trigger in FORMULA_TRIGGERS)


class SpreadsheetText(Func):
    """spreadsheet_cell() in SQL, for text the database already keeps free of invisible characters.

    For ids and codes under a "*_safe" or charset CHECK constraint only the formula prefix is
    left to add, and a CASE on the first character costs next to nothing per row of a COPY.
    """

    output_field = TextField()
    arity = 1

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"(CASE WHEN left({sql}, 1) IN ({_SQL_TRIGGERS}) THEN '''' || {sql} ELSE {sql} END)",
            (*params, *params, *params),
        )


class SpreadsheetFreeText(Func):
    """spreadsheet_cell() in SQL, for free text: invisible characters stripped (tabs and line breaks
    kept), then a leading formula trigger prefixed with an apostrophe.

    Rows stored before free text was checked at input come out as safe as new ones.
    """

    output_field = TextField()
    arity = 1

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        # In the replacement, '' is one apostrophe and \1 the captured trigger.
        return (
            f"regexp_replace(regexp_replace({sql}, %s, '', 'g'), %s, '''\\1')",
            (*params, UNSAFE_FREE_TEXT_CLASS, FORMULA_TRIGGER_PATTERN),
        )
