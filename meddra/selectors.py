"""Reads of the MedDRA dictionary: the versions loaded, coding a lowest level term, the term search.

Dictionary terms are not clinical data: every staff user may read them, so nothing here is
limited by clinic (the admin's term search still needs a verified staff session).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import Case, QuerySet, Value, When
from django.db.models.functions import Upper

from meddra.models import Currency, Hierarchy, LowestLevelTerm, MeddraVersion

_WORD = re.compile(r"[^\W_]+")  # letters and digits: what the "simple" text search configuration keeps as words
MAX_WORDS = 10


@dataclass(frozen=True, slots=True)
class Coding:
    """What a lowest level term code means in one version: the LLT, its PT and the PT's primary SOC."""

    version: str
    llt_code: str
    llt_name: str
    current: bool
    pt_code: str
    pt_name: str
    soc_code: str
    soc_name: str


def latest_version() -> MeddraVersion | None:
    """Return the newest loaded version (by release number), or None when no dictionary is loaded."""
    return MeddraVersion.objects.latest_first().first()


def version_named(version: str) -> MeddraVersion | None:
    """Return the loaded version ``version`` ("27.1"), or None when it is not loaded."""
    return MeddraVersion.objects.filter(version=version).first()


def llt_coding(version: MeddraVersion, code: str) -> Coding | None:
    """Return the coding of lowest level term ``code`` in ``version`` (current or not), or None when unknown."""
    llt = LowestLevelTerm.objects.filter(version=version, code=code).values("name", "currency", "pt_code").first()
    if llt is None:
        return None
    path = (
        Hierarchy.objects.filter(version=version, pt_code=llt["pt_code"], primary_soc_fg="Y")
        .order_by("hlt_code", "hlgt_code")
        .values("pt_name", "soc_code", "soc_name")
        .first()
    )
    if path is None:  # the loader refuses a release with a PT without its primary SOC
        return None
    return Coding(
        version=version.version,
        llt_code=code,
        llt_name=llt["name"],
        current=llt["currency"] == Currency.CURRENT,
        pt_code=llt["pt_code"],
        pt_name=path["pt_name"],
        soc_code=path["soc_code"],
        soc_name=path["soc_name"],
    )


def current_llts(version: MeddraVersion, term: str = "") -> QuerySet[LowestLevelTerm]:
    """Return the current lowest level terms of ``version`` matching ``term``, best first.

    A name matches when, for every word typed, one of its words starts with it ("inj site p"
    finds "Injection site pain" and "Pain at injection site"; the index meddra_llt_current_words_idx
    answers it). Names that start with the whole term come first, then alphabetically.
    """
    found = LowestLevelTerm.objects.filter(version=version, currency=Currency.CURRENT)
    words = _WORD.findall(term.lower())[:MAX_WORDS]
    if not words:
        return found.order_by(Upper("name"), "code")
    # Words are letters and digits only, so the raw query is always well-formed; the value is a bound parameter.
    query = SearchQuery(" & ".join(f"{word}:*" for word in words), config="simple", search_type="raw")
    return (
        found.annotate(words=SearchVector("name", config="simple"))
        .filter(words=query)
        .annotate(starts=Case(When(name__istartswith=" ".join(term.split()), then=Value(0)), default=Value(1)))
        .order_by("starts", Upper("name"), "code")
    )


def llt_label(version: MeddraVersion | None, code: str) -> str:
    """Return "name (code)" for an LLT code of ``version`` (the code alone when it is not there)."""
    if version is None or not code:
        return code
    name = LowestLevelTerm.objects.filter(version=version, code=code).values_list("name", flat=True).first()
    return f"{name} ({code})" if name else code
