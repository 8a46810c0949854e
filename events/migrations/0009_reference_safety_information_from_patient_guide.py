"""The reference safety information's starting point: what the patient guide tells every patient to expect.

Expected after any cell type: pain, swelling and redness or warmth where the cells were injected
(injection-site reactions), and transient flu-like symptoms and fatigue (systemic reactions).
Registry administrators maintain the list in the admin from here on (entries are retired, never deleted).
"""

import datetime as dt

from django.db import migrations

SOURCE = "Patient guide"
ENTRIES = [
    ("injection_site_reaction", "Pain at the injection site"),
    ("injection_site_reaction", "Swelling at the injection site"),
    ("injection_site_reaction", "Redness or warmth at the injection site"),
    ("systemic_reaction", "Transient flu-like symptoms"),
    ("systemic_reaction", "Fatigue"),
]
ADDED_ON = dt.date(2026, 11, 28)


def seed(apps, schema_editor):
    entry = apps.get_model("events", "ReferenceSafetyInformation")
    for category, term in ENTRIES:
        entry.objects.get_or_create(
            cell_type="",
            category=category,
            meddra_pt_code="",
            term=term,
            defaults={"source": SOURCE, "added_on": ADDED_ON},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0008_case_lifecycle"),
    ]

    # Unapplying keeps the rows: reference safety information is never deleted (a trigger refuses it).
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
