"""Load the demo registry on a fresh machine; running it again creates nothing."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from intake import demo


class Command(BaseCommand):
    help = "Load demo clinics, users, patients, procedures, follow-up visits and adverse events (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=demo.DEFAULT_PATIENTS, help="Number of demo patients.")
        parser.add_argument("--seed", type=int, default=demo.SEED, help="Random seed (fixed, so loads repeat).")

    def handle(self, *args, patients: int, seed: int, **options):
        started = time.monotonic()
        summary = demo.load_demo_data(seed=seed, patients=patients)
        elapsed = time.monotonic() - started
        if summary.nothing_created:
            self.stdout.write(self.style.WARNING("Demo data already loaded; nothing created."))
        else:
            self.stdout.write(self.style.SUCCESS(f"Demo data loaded in {elapsed:.1f} s:"))
            for key, count in sorted(summary.created.items()):
                self.stdout.write(f"  {key:<34} {count}")
        if summary.patient_link:
            self.stdout.write("\nA patient's diary link (Madrid; shown once, more under Patient links):")
            self.stdout.write(f"  {summary.patient_link}")
        self.stdout.write("\nDemo logins (/admin/):")
        for username, role, clinic, is_new in summary.credentials:
            note = "" if is_new else "  (user already existed: password not reset)"
            self.stdout.write(f"  {username:<20} {role:<24} {clinic:<12} password: {demo.DEMO_PASSWORD}{note}")
        if settings.OTP_EXEMPT_DEMO_USERS:
            self.stdout.write("No authenticator code needed for them: DEBUG and OTP_EXEMPT_DEMO_USERS are on.")
        else:
            self.stdout.write("Their first login asks them to set up an authenticator app (two-factor login).")
