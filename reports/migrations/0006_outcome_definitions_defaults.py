"""Version 1 of every outcome definition: the defaults of DESIGN 2b, after the patient guide's timelines.

The table is frozen here (a migration must not follow later edits of reports.outcomes.DEFAULT_WINDOWS).
"""

from django.db import migrations

# code: (label, window start day, window end day or None = open)
DEFAULTS = {
    "any": ("Any adverse event", 0, None),
    "serious": ("Serious adverse event", 0, None),
    "grade_3_plus": ("CTCAE grade 3 or higher", 0, None),
    "injection_site_reaction": ("Injection-site reaction", 0, 7),
    "systemic_reaction": ("Systemic reaction (flu-like, fatigue)", 0, 7),
    "infection": ("Infection", 0, 90),
    "ectopic_tissue": ("Ectopic / unwanted tissue formation", 0, None),
    "immune_reaction": ("Immune reaction", 0, 90),
    "allergic_reaction": ("Allergic reaction", 0, 30),
    "neoplasm": ("Neoplasm", 180, None),
    "neurological": ("Neurological complication", 0, 30),
    "thromboembolic": ("Thromboembolic event", 0, 90),
    "other": ("Other", 0, None),
}
NOTE = "Default, after the patient guide's timelines."


def store_defaults(apps, schema_editor):
    OutcomeDefinition = apps.get_model("reports", "OutcomeDefinition")
    db = schema_editor.connection.alias
    have = set(OutcomeDefinition.objects.using(db).values_list("code", flat=True))
    OutcomeDefinition.objects.using(db).bulk_create(
        [
            OutcomeDefinition(
                code=code,
                label=label,
                qualifies=code,
                window_start_day=start,
                window_end_day=end,
                version=1,
                note=NOTE,
            )
            for code, (label, start, end) in DEFAULTS.items()
            if code not in have
        ]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0005_outcome_definitions_run_options"),
    ]

    # Versions are append-only (the database refuses deletes); unapplying 0005 drops the table.
    operations = [migrations.RunPython(store_defaults, migrations.RunPython.noop)]
