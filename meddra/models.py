"""MedDRA dictionary versions: the terms and hierarchy of each loaded MSSO release, side by side.

Every row belongs to the version it was loaded with (manage.py load_meddra DIR --version 27.1);
a later release loads beside the earlier ones, and an adverse event keeps the version it was
coded with. Rows are written once, by the loader (COPY), and never changed: a trigger refuses
any UPDATE. Codes are kept as the release spells them: eight digits, as text.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import Q

CODE_LENGTH = 8
NAME_LENGTH = 250  # MSSO names are at most 100 characters; room for translations.


class Currency(models.TextChoices):
    CURRENT = "Y", "current"
    NON_CURRENT = "N", "non-current"


def _read_only(prefix: str) -> pgtrigger.Protect:
    return pgtrigger.Protect(name=f"{prefix}_read_only", operation=pgtrigger.Update)


def _code_shape(field: str, prefix: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__regex": r"\A[0-9]{8}\Z"}), name=f"{prefix}_{field}_shape")


class MeddraVersionQuerySet(models.QuerySet):
    def latest_first(self):
        """Return the versions, the newest release (highest number, not the last loaded) first."""
        return self.order_by("-major", "-minor")


class MeddraVersion(models.Model):
    """One loaded MedDRA release ("27.1"), with what was loaded, when, by whom, from which files."""

    version = models.CharField(max_length=16, unique=True, help_text='The MSSO release number, e.g. "27.1".')
    major = models.PositiveSmallIntegerField()
    minor = models.PositiveSmallIntegerField()
    loaded_at = models.DateTimeField()
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(max_length=1000, blank=True, help_text="The folder the files were read from.")
    # {"llt.asc": {"sha256": "...", "bytes": 123, "encoding": "utf-8"}, ...}
    files = models.JSONField(default=dict, help_text="Per file: SHA-256 checksum, size and encoding read.")
    # {"llt": 80000, "pt": 25000, ...}
    counts = models.JSONField(default=dict, help_text="Rows loaded per table.")

    objects = MeddraVersionQuerySet.as_manager()

    class Meta:
        verbose_name = "MedDRA version"
        ordering = ["-major", "-minor"]
        constraints = [
            models.UniqueConstraint(fields=["major", "minor"], name="meddra_version_number_unique"),
            models.CheckConstraint(
                condition=Q(version__regex=r"\A[0-9]{1,4}\.[0-9]{1,4}\Z"), name="meddra_version_shape"
            ),
        ]
        triggers = [_read_only("meddra_version")]

    def __str__(self) -> str:
        return f"MedDRA {self.version}"


def _version() -> models.ForeignKey:
    # Every dictionary table's unique constraint starts with version: it is the version's index too.
    return models.ForeignKey(MeddraVersion, on_delete=models.CASCADE, related_name="+", db_index=False)


class Term(models.Model):
    """A term of one level of the hierarchy in one version: its 8-digit code and its name."""

    version = _version()
    code = models.CharField(max_length=CODE_LENGTH)
    name = models.CharField(max_length=NAME_LENGTH)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


def _term_constraints(prefix: str) -> list:
    return [
        # Also the index of every look-up by code (coding an event, the loader's checks).
        models.UniqueConstraint(fields=["version", "code"], name=f"{prefix}_version_code_unique"),
        _code_shape("code", prefix),
    ]


class SystemOrganClass(Term):
    abbrev = models.CharField(max_length=16, blank=True)

    class Meta:
        verbose_name = "system organ class (SOC)"
        verbose_name_plural = "system organ classes (SOC)"
        db_table = "meddra_soc"
        constraints = _term_constraints("meddra_soc")
        triggers = [_read_only("meddra_soc")]


class HighLevelGroupTerm(Term):
    class Meta:
        verbose_name = "high level group term (HLGT)"
        db_table = "meddra_hlgt"
        constraints = _term_constraints("meddra_hlgt")
        triggers = [_read_only("meddra_hlgt")]


class HighLevelTerm(Term):
    class Meta:
        verbose_name = "high level term (HLT)"
        db_table = "meddra_hlt"
        constraints = _term_constraints("meddra_hlt")
        triggers = [_read_only("meddra_hlt")]


class PreferredTerm(Term):
    # pt.asc's pt_soc_code: the primary SOC (mdhier.asc says the same with primary_soc_fg = 'Y').
    primary_soc_code = models.CharField(max_length=CODE_LENGTH)

    class Meta:
        verbose_name = "preferred term (PT)"
        db_table = "meddra_pt"
        constraints = _term_constraints("meddra_pt")
        triggers = [_read_only("meddra_pt")]


class LowestLevelTerm(Term):
    pt_code = models.CharField("PT code", max_length=CODE_LENGTH)
    currency = models.CharField(max_length=1, choices=Currency.choices)

    class Meta:
        verbose_name = "lowest level term (LLT)"
        db_table = "meddra_llt"
        constraints = [
            *_term_constraints("meddra_llt"),
            models.CheckConstraint(condition=Q(currency__in=Currency.values), name="meddra_llt_currency_valid"),
        ]
        indexes = [
            # The admin's term search (meddra.selectors.current_llts): the current LLTs whose name has, for
            # every word typed, a word starting with it ("inj site" finds "Pain at injection site"). Full
            # text search with the "simple" configuration (no stemming, no stop words) is built into
            # PostgreSQL: no extension to install.
            GinIndex(
                SearchVector("name", config="simple"),
                name="meddra_llt_current_words_idx",
                condition=Q(currency=Currency.CURRENT),
            ),
        ]
        triggers = [_read_only("meddra_llt")]

    @property
    def is_current(self) -> bool:
        return self.currency == Currency.CURRENT


class HltPt(models.Model):
    """hlt_pt.asc: a PT under an HLT (a PT may sit under several)."""

    version = _version()
    hlt_code = models.CharField("HLT code", max_length=CODE_LENGTH)
    pt_code = models.CharField("PT code", max_length=CODE_LENGTH)

    class Meta:
        verbose_name = "HLT-PT link"
        db_table = "meddra_hlt_pt"
        constraints = [
            models.UniqueConstraint(fields=["version", "hlt_code", "pt_code"], name="meddra_hlt_pt_unique"),
        ]
        triggers = [_read_only("meddra_hlt_pt")]

    def __str__(self) -> str:
        return f"{self.hlt_code} > {self.pt_code}"


class HlgtHlt(models.Model):
    """hlgt_hlt.asc: an HLT under an HLGT."""

    version = _version()
    hlgt_code = models.CharField("HLGT code", max_length=CODE_LENGTH)
    hlt_code = models.CharField("HLT code", max_length=CODE_LENGTH)

    class Meta:
        verbose_name = "HLGT-HLT link"
        db_table = "meddra_hlgt_hlt"
        constraints = [
            models.UniqueConstraint(fields=["version", "hlgt_code", "hlt_code"], name="meddra_hlgt_hlt_unique"),
        ]
        triggers = [_read_only("meddra_hlgt_hlt")]

    def __str__(self) -> str:
        return f"{self.hlgt_code} > {self.hlt_code}"


class SocHlgt(models.Model):
    """soc_hlgt.asc: an HLGT under a SOC."""

    version = _version()
    soc_code = models.CharField("SOC code", max_length=CODE_LENGTH)
    hlgt_code = models.CharField("HLGT code", max_length=CODE_LENGTH)

    class Meta:
        verbose_name = "SOC-HLGT link"
        db_table = "meddra_soc_hlgt"
        constraints = [
            models.UniqueConstraint(fields=["version", "soc_code", "hlgt_code"], name="meddra_soc_hlgt_unique"),
        ]
        triggers = [_read_only("meddra_soc_hlgt")]

    def __str__(self) -> str:
        return f"{self.soc_code} > {self.hlgt_code}"


class Hierarchy(models.Model):
    """mdhier.asc: one path PT -> HLT -> HLGT -> SOC with its names; primary_soc_fg marks the primary SOC's."""

    version = _version()
    pt_code = models.CharField("PT code", max_length=CODE_LENGTH)
    hlt_code = models.CharField("HLT code", max_length=CODE_LENGTH)
    hlgt_code = models.CharField("HLGT code", max_length=CODE_LENGTH)
    soc_code = models.CharField("SOC code", max_length=CODE_LENGTH)
    pt_name = models.CharField(max_length=NAME_LENGTH)
    hlt_name = models.CharField(max_length=NAME_LENGTH)
    hlgt_name = models.CharField(max_length=NAME_LENGTH)
    soc_name = models.CharField(max_length=NAME_LENGTH)
    soc_abbrev = models.CharField(max_length=16, blank=True)
    pt_soc_code = models.CharField("PT's primary SOC code", max_length=CODE_LENGTH)
    primary_soc_fg = models.CharField("primary SOC", max_length=1, choices=[("Y", "yes"), ("N", "no")])

    class Meta:
        verbose_name = "MedDRA hierarchy row"
        db_table = "meddra_mdhier"
        indexes = [
            # Coding an event: the primary path of one PT in one version (meddra.selectors.llt_coding).
            models.Index(
                fields=["version", "pt_code"], name="meddra_mdhier_primary_idx", condition=Q(primary_soc_fg="Y")
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "pt_code", "hlt_code", "hlgt_code", "soc_code"], name="meddra_mdhier_path_unique"
            ),
            models.CheckConstraint(
                condition=Q(primary_soc_fg__in=["Y", "N"]), name="meddra_mdhier_primary_soc_fg_valid"
            ),
        ]
        triggers = [_read_only("meddra_mdhier")]

    def __str__(self) -> str:
        return f"{self.soc_code} > {self.hlgt_code} > {self.hlt_code} > {self.pt_code}"
