"""IdempotencyRecord now belongs to core (core 0001 adopted the table): drop it from registry's state only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0008_drop_authtoken_token"),
        ("core", "0001_idempotency_record_moves_to_core"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="IdempotencyRecord")],
            database_operations=[],
        ),
    ]
