"""The two rule sets the registry ships with (docs/expedited-reporting.md); administrators edit or add more."""

from django.db import migrations

# EU member states, the other EEA countries, and the ICH regulators the registry's clinics report to.
EU = ["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU"]
EU += ["IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"]
ICH_COUNTRIES = sorted({*EU, "IS", "LI", "NO", "GB", "CH", "JP", "CA", "US"})

HCTP = {
    "code": "us-hctp-1271-350",
    "name": "US HCT/P adverse reaction (21 CFR 1271.350(a))",
    "all_countries": False,
    "jurisdiction": ["US"],
    "requires_serious": False,
    "any_of_outcomes": ["death", "life_threatening", "disability", "intervention"],
    "requires_related": True,
    "requires_unexpected": False,
    "requires_communicable_disease": True,
    "clock_days": 15,
    "recipient": "FDA CBER (MedWatch)",
    "form": "fda_3500a",
    "legal_basis": "21 CFR 1271.350(a): within 15 calendar days of initial receipt of the information",
}
ICH_15 = {
    "code": "ich-e2a-15-day",
    "name": "ICH E2A expedited report (serious, unexpected, related)",
    "all_countries": False,
    "jurisdiction": ICH_COUNTRIES,
    "requires_serious": True,
    "any_of_outcomes": [],
    "requires_related": True,
    "requires_unexpected": True,
    "requires_communicable_disease": False,
    "clock_days": 15,
    "recipient": "National competent authority",
    "form": "cioms_i",
    "legal_basis": "ICH E2A III.A: other serious, unexpected reactions within 15 calendar days",
}
ICH_7 = {
    **ICH_15,
    "code": "ich-e2a-7-day",
    "name": "ICH E2A expedited report, fatal or life-threatening",
    "any_of_outcomes": ["death", "life_threatening"],
    "clock_days": 7,
    "legal_basis": "ICH E2A III.A: fatal or life-threatening unexpected reactions within 7 calendar days",
}


def add_rules(apps, schema_editor):
    rule = apps.get_model("safety", "ReportingRule")
    rule.objects.update_or_create(code=HCTP["code"], defaults=HCTP)
    fifteen, _ = rule.objects.update_or_create(code=ICH_15["code"], defaults=ICH_15)
    rule.objects.update_or_create(code=ICH_7["code"], defaults={**ICH_7, "supersedes": fifteen})


def deactivate_rules(apps, schema_editor):
    # Rules are never deleted (a trigger refuses it): going back deactivates them.
    apps.get_model("safety", "ReportingRule").objects.filter(
        code__in=[HCTP["code"], ICH_15["code"], ICH_7["code"]]
    ).update(active=False)


class Migration(migrations.Migration):
    dependencies = [("safety", "0001_expedited_reporting")]

    operations = [migrations.RunPython(add_rules, deactivate_rules)]
