"""Drop rest_framework.authtoken's table (Hardening 10: API tokens are django-rest-knox tokens now).

Its rows are clear-text bearer tokens that nothing reads any more; left behind, the table would also
keep a foreign key to auth_user that Django no longer knows about, so deleting such a user would fail.
IF EXISTS: a database created after the switch never had the table. Not reversible (the tokens are gone
on purpose; logging in again issues a knox token).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0007_safe_identifiers_and_free_text"),
    ]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token CASCADE;", reverse_sql=migrations.RunSQL.noop),
    ]
