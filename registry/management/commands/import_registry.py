"""manage.py import_registry DIR: load a folder of registry CSV files, all or nothing."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from registry.importer import ImportRefused, import_folder


class Command(BaseCommand):
    help = (
        "Import clinics.csv, patients.csv, procedures.csv, follow_ups.csv and adverse_events.csv from a folder "
        "(any may be absent). Every row is checked first; any error refuses the whole import and lists them all. "
        "Re-importing updates changed rows and leaves the rest alone. See docs/import-format.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="Folder holding the CSV files.")
        parser.add_argument("--user", metavar="USERNAME", help="Who runs the import, recorded in the audit trail.")

    def handle(self, *args, folder: Path, user: str | None = None, **options):
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"No user named {user!r}.")
        try:
            summary = import_folder(folder=folder, user=actor)
        except ImportRefused as refused:
            raise CommandError(refused.report()) from refused
        for line in summary.lines():
            self.stdout.write(line)
        if options["verbosity"] >= 2:
            for phase, seconds in summary.phases.items():
                self.stdout.write(f"  {phase}: {seconds:.2f} s")
        self.stdout.write(self.style.SUCCESS(f"Imported {folder}."))
