"""manage.py import_registry DIR: load a folder of registry CSV files, all or nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from intake.importer import ImportRefused, import_folder


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, got {value!r}")
    return number


class Command(BaseCommand):
    help = (
        "Import clinics.csv, patients.csv, procedures.csv, follow_ups.csv and adverse_events.csv from a folder "
        "(any may be absent). Every row is checked first; any error refuses the whole import and lists the first "
        "--max-errors errors with the count of the rest. Re-importing updates changed rows and leaves the rest "
        "alone. See docs/import-format.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="Folder holding the CSV files.")
        parser.add_argument("--user", metavar="USERNAME", help="Who runs the import, recorded in the audit trail.")
        parser.add_argument(
            "--max-errors",
            type=_positive,
            metavar="N",
            default=None,
            help=f"List at most N errors of a refused import and count the rest "
            f"(default: IMPORT_MAX_ERRORS, now {settings.IMPORT_MAX_ERRORS}).",
        )

    def handle(self, *args, folder: Path, user: str | None = None, max_errors: int | None = None, **options):
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"No user named {user!r}.")
        try:
            summary = import_folder(folder=folder, user=actor, max_errors=max_errors)
        except ImportRefused as refused:
            raise CommandError(refused.report()) from refused
        for line in summary.lines():
            self.stdout.write(line)
        if options["verbosity"] >= 2:
            for phase, seconds in summary.phases.items():
                self.stdout.write(f"  {phase}: {seconds:.2f} s")
        self.stdout.write(self.style.SUCCESS(f"Imported {folder}."))
