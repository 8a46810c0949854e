"""manage.py load_meddra DIR --version V: a MedDRA ASCII release becomes a dictionary version, all or nothing."""

from __future__ import annotations

import hashlib
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.utils import ProgrammingError

from meddra import selectors
from meddra.models import (
    Hierarchy,
    HighLevelGroupTerm,
    HighLevelTerm,
    HlgtHlt,
    HltPt,
    LowestLevelTerm,
    MeddraVersion,
    PreferredTerm,
    SocHlgt,
    SystemOrganClass,
)
from tests.factories import UserFactory
from tests.meddra.conftest import RELEASE_27_1, RELEASE_28_0

pytestmark = pytest.mark.django_db

TABLES = {
    "soc": SystemOrganClass,
    "hlgt": HighLevelGroupTerm,
    "hlt": HighLevelTerm,
    "pt": PreferredTerm,
    "llt": LowestLevelTerm,
    "hlt_pt": HltPt,
    "hlgt_hlt": HlgtHlt,
    "soc_hlgt": SocHlgt,
    "mdhier": Hierarchy,
}


def run(directory: Path, version: str, *extra: str) -> str:
    out = StringIO()
    call_command("load_meddra", str(directory), "--version", version, *extra, stdout=out)
    return out.getvalue()


def lines_of(directory: Path, name: str) -> int:
    return sum(1 for line in (directory / name).read_text().splitlines() if line.strip())


def stored_counts() -> dict[str, int]:
    return {label: model.objects.count() for label, model in TABLES.items()}


def test_it_loads_every_file_and_prints_the_count_per_table_and_the_time():
    output = run(RELEASE_27_1, "27.1")

    for label, model in TABLES.items():
        expected = lines_of(RELEASE_27_1, f"{label}.asc")
        assert model.objects.count() == expected
        assert f"{label}: {expected} rows" in output
    assert re.search(r"Loaded MedDRA 27\.1 in \d+\.\d\d s\.", output)
    version = MeddraVersion.objects.get()
    assert version.version == "27.1"
    assert (version.major, version.minor) == (27, 1)
    assert version.counts == {label: lines_of(RELEASE_27_1, f"{label}.asc") for label in TABLES}
    for label in TABLES:
        data = (RELEASE_27_1 / f"{label}.asc").read_bytes()
        assert version.files[f"{label}.asc"] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "encoding": "utf-8",
        }
    assert version.loaded_by is None


def test_it_keeps_the_terms_hierarchy_and_flags_as_the_files_give_them(meddra_27_1):
    version = MeddraVersion.objects.get(version="27.1")
    soreness = LowestLevelTerm.objects.get(version=version, code="94000002")
    assert (soreness.name, soreness.pt_code, soreness.currency) == (
        "Synthetic injection site soreness",
        "93000001",
        "N",
    )
    assert PreferredTerm.objects.get(version=version, code="93000002").primary_soc_code == "90000002"
    septic = Hierarchy.objects.filter(version=version, pt_code="93000002").order_by("soc_code")
    assert [(row.soc_code, row.primary_soc_fg) for row in septic] == [("90000002", "Y"), ("90000003", "N")]
    assert SystemOrganClass.objects.get(version=version, code="90000002").abbrev == "SynInf"


def test_a_second_version_loads_beside_the_first_and_the_newest_release_is_the_latest():
    run(RELEASE_28_0, "28.0")
    run(RELEASE_27_1, "27.1")  # an older release loaded later does not become the latest

    assert sorted(MeddraVersion.objects.values_list("version", flat=True)) == ["27.1", "28.0"]
    assert selectors.latest_version().version == "28.0"
    knee = dict(LowestLevelTerm.objects.filter(code="94000004").values_list("version__version", "currency"))
    assert knee == {"27.1": "Y", "28.0": "N"}
    assert LowestLevelTerm.objects.count() == 2 * lines_of(RELEASE_27_1, "llt.asc")


def test_loading_a_version_already_loaded_is_refused_and_changes_nothing(meddra_27_1):
    before = stored_counts()
    loaded_at = MeddraVersion.objects.get().loaded_at

    with pytest.raises(CommandError, match=r"MedDRA 27\.1 is already loaded on .*; a loaded version is never changed"):
        run(RELEASE_28_0, "27.1")

    assert stored_counts() == before
    assert MeddraVersion.objects.get().loaded_at == loaded_at


@pytest.mark.parametrize("version", ["27", "27.1.2", "v27.1", ""])
def test_a_version_that_is_not_a_meddra_release_number_is_refused(version):
    with pytest.raises(CommandError, match=r"is not a MedDRA version such as 27\.1"):
        run(RELEASE_27_1, version)
    assert not MeddraVersion.objects.exists()


def test_the_user_who_loads_is_recorded():
    user = UserFactory(username="dictionary_keeper")
    run(RELEASE_27_1, "27.1", "--user", "dictionary_keeper")
    assert MeddraVersion.objects.get().loaded_by == user
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run(RELEASE_28_0, "28.0", "--user", "nobody")


def _rewrite(path: Path, line: int, change) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[line - 1] = change(lines[line - 1])
    path.write_text("".join(lines))


def _drop_last_field(text: str) -> str:
    return text.rstrip("\n").removesuffix("$").rsplit("$", 1)[0] + "$\n"


MALFORMED = {
    # case: (file, line, change, "file, line N, column C" expected, message fragment)
    "wrong field count": (
        "llt.asc",
        3,
        _drop_last_field,
        "llt.asc, line 3, column llt_jart_code",
        "10 fields, expected 11",
    ),
    "extra field": ("hlt_pt.asc", 2, lambda t: t.rstrip("\n") + "99$\n", "hlt_pt.asc, line 2, column -", "3 fields"),
    "non-numeric code": (
        "pt.asc",
        2,
        lambda t: t.replace("93000002$", "9300000X$", 1),
        "pt.asc, line 2, column pt_code",
        "'9300000X' is not a number",
    ),
    "code not 8 digits": (
        "hlt.asc",
        1,
        lambda t: t.replace("92000001$", "9200001$", 1),
        "hlt.asc, line 1, column hlt_code",
        "'9200001' is not 8 digits long",
    ),
    "LLT of an unknown PT": (
        "llt.asc",
        5,
        lambda t: t.replace("$93000002$", "$93999999$", 1),
        "llt.asc, line 5, column pt_code",
        "code 93999999 is not in pt.asc",
    ),
    "link to an unknown HLGT": (
        "soc_hlgt.asc",
        3,
        lambda t: t.replace("91000003", "91999999"),
        "soc_hlgt.asc, line 3, column hlgt_code",
        "code 91999999 is not in hlgt.asc",
    ),
    "PT without a primary SOC": (
        "mdhier.asc",
        1,
        lambda t: t.replace("$Y$", "$N$"),
        "pt.asc, line 1, column pt_code",
        "PT 93000001 has no primary SOC in mdhier.asc",
    ),
    "PT with two primary SOCs": (
        "mdhier.asc",
        3,
        lambda t: t.replace("$N$", "$Y$"),
        "mdhier.asc, line 3, column primary_soc_fg",
        "PT 93000002 has a second primary SOC 90000003 (line 2 names 90000002)",
    ),
    "currency that is neither Y nor N": (
        "llt.asc",
        2,
        lambda t: t.replace("$Y$", "$C$"),
        "llt.asc, line 2, column llt_currency",
        "'C' is not one of Y, N",
    ),
    "line without its trailing $": (
        "hlgt_hlt.asc",
        2,
        lambda t: t.rstrip("\n").removesuffix("$") + "\n",
        "hlgt_hlt.asc, line 2, column hlt_code",
        "does not end with '$'",
    ),
    "repeated code": (
        "hlgt.asc",
        2,
        lambda t: t.replace("91000002", "91000001"),
        "hlgt.asc, line 2, column hlgt_code",
        "repeats 91000001 (first on line 1)",
    ),
    "empty name": (
        "pt.asc",
        3,
        lambda t: t.replace("Synthetic joint swelling", ""),
        "pt.asc, line 3, column pt_name",
        "the name is empty",
    ),
}


@pytest.mark.parametrize("case", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_file_is_refused_with_file_line_and_column_and_changes_nothing(meddra_27_1, release_copy, case):
    name, line, change, where, message = case
    _rewrite(release_copy / name, line, change)
    before = stored_counts()

    with pytest.raises(CommandError) as refused:
        run(release_copy, "28.0")

    report = str(refused.value)
    assert "nothing was loaded" in report
    assert f"{where}: " in report, report
    assert message in report, report
    assert stored_counts() == before
    assert list(MeddraVersion.objects.values_list("version", flat=True)) == ["27.1"]


def test_a_missing_file_is_refused_by_name_and_changes_nothing(release_copy):
    (release_copy / "soc_hlgt.asc").unlink()
    with pytest.raises(CommandError, match=r"soc_hlgt\.asc: the file is missing from "):
        run(release_copy, "28.0")
    assert stored_counts() == dict.fromkeys(TABLES, 0)
    assert not MeddraVersion.objects.exists()


def test_every_problem_is_listed_not_only_the_first(release_copy):
    _rewrite(release_copy / "llt.asc", 1, lambda t: t.replace("93000001$Synthetic", "X3000001$Synthetic"))
    _rewrite(release_copy / "hlt.asc", 2, _drop_last_field)
    with pytest.raises(CommandError) as refused:
        run(release_copy, "28.0")
    report = str(refused.value)
    assert "(2 problems)" in report
    assert "llt.asc, line 1, column llt_code" in report
    assert "hlt.asc, line 2, column hlt_jart_code" in report


def test_latin_1_files_of_older_releases_are_read_as_latin_1(release_copy):
    llt = release_copy / "llt.asc"
    llt.write_bytes(
        llt.read_text().replace("Synthetic knee swelling", "Synthetic knee swelling (genou enflé)").encode("latin-1")
    )
    run(release_copy, "28.0")
    assert LowestLevelTerm.objects.get(code="94000004").name == "Synthetic knee swelling (genou enflé)"
    assert MeddraVersion.objects.get().files["llt.asc"]["encoding"] == "latin-1"


def test_utf_8_files_and_windows_line_ends_are_read_as_such(release_copy):
    for path in release_copy.iterdir():
        path.write_bytes(path.read_text().replace("\n", "\r\n").replace("Synthetic knee", "Synthetic knée").encode())
    run(release_copy, "28.0")
    assert LowestLevelTerm.objects.get(code="94000004").name == "Synthetic knée swelling"
    assert MeddraVersion.objects.get().files["llt.asc"]["encoding"] == "utf-8"
    assert LowestLevelTerm.objects.count() == lines_of(RELEASE_28_0, "llt.asc")


@pytest.mark.parametrize(
    ("model", "change"),
    [
        (LowestLevelTerm, {"currency": "Y"}),
        (Hierarchy, {"primary_soc_fg": "N"}),
        (MeddraVersion, {"version": "29.0"}),
    ],
)
def test_loaded_rows_are_read_only(meddra_27_1, model, change):
    with pytest.raises(ProgrammingError, match="Cannot update rows"), transaction.atomic():
        model.objects.update(**change)


def _large_release(directory: Path, terms: int) -> Path:
    """Write a synthetic release of one SOC/HLGT/HLT and ``terms`` PTs, each with its LLT; return its folder."""

    def line(*fields: str) -> str:
        return "".join(f"{field}$" for field in fields) + "\n"

    directory.mkdir()
    pts = [(f"{93000000 + i}", f"Synthetic term {i} group{i % 50}") for i in range(terms)]
    files = {
        "soc.asc": line("90000001", "Synthetic SOC", "SynS", *[""] * 7),
        "hlgt.asc": line("91000001", "Synthetic HLGT", *[""] * 7),
        "hlt.asc": line("92000001", "Synthetic HLT", *[""] * 7),
        "pt.asc": "".join(line(code, name, "", "90000001", *[""] * 7) for code, name in pts),
        "llt.asc": "".join(line(code, name, code, *[""] * 6, "Y", "") for code, name in pts),
        "hlt_pt.asc": "".join(line("92000001", code) for code, _ in pts),
        "hlgt_hlt.asc": line("91000001", "92000001"),
        "soc_hlgt.asc": line("90000001", "91000001"),
        "mdhier.asc": "".join(
            line(code, "92000001", "91000001", "90000001", name, "H", "G", "S", "SynS", "", "90000001", "Y")
            for code, name in pts
        ),
    }
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_the_term_search_uses_its_index(tmp_path):
    run(_large_release(tmp_path / "large", 3000), "27.1")
    version = MeddraVersion.objects.get()
    found = selectors.current_llts(version, "GROUP7 synthetic")
    assert found.count() == 60
    assert "meddra_llt_current_words_idx" in found.explain()


def test_a_version_is_stored_as_its_release_number():
    run(RELEASE_27_1, "27.01")
    assert MeddraVersion.objects.get().version == "27.1"
    with pytest.raises(CommandError, match=r"MedDRA 27\.1 is already loaded"):
        run(RELEASE_28_0, "27.1")
