"""manage.py load_meddra DIR --version 27.1: load a licensed MedDRA ASCII release as a new dictionary version."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from meddra.loader import FILES, ReleaseRefused, load_release


class Command(BaseCommand):
    help = (
        "Load a MedDRA release from the MSSO ASCII files in DIR (the MedAscii folder: "
        + ", ".join(FILES)
        + ") as dictionary version --version. Every file is checked first; a malformed release is refused "
        "with file, line and column and nothing is loaded. A version already loaded is never changed; a new "
        "version loads beside the others, and adverse events are coded against the newest."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names the MedDRA release here, not Django's version: ours replaces the built-in flag.
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="Folder holding the .asc files (MedAscii).")
        parser.add_argument("--version", dest="meddra_version", required=True, help='The release number, e.g. "27.1".')
        parser.add_argument("--user", metavar="USERNAME", help="Who loads the release (recorded with the version).")

    def handle(self, *args, folder: Path, meddra_version: str, user: str | None = None, **options):
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"No user named {user!r}.")
        try:
            summary = load_release(directory=folder, version=meddra_version, user=actor)
        except ReleaseRefused as refused:
            raise CommandError(refused.report()) from refused
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"MedDRA {summary.version} is loaded."))
