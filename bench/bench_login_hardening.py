"""Measure the login hardening of issue 8 (items 10-12) against a real server on loopback.

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_login_hardening.py

It creates ``bench_login_<pid>``, migrates it and seeds a clinician with a confirmed TOTP device, then:

1. runs ``manage.py check --deploy`` with DJANGO_ENV=production (and a real SECRET_KEY, ALLOWED_HOSTS)
   and counts its warnings (target 0);
2. starts gunicorn (1 sync worker, DEBUG off, plain http, per-process cache) on 127.0.0.1 and replays
   the issue's reproduction: 40 failed token logins, each with a new X-Forwarded-For and username, and
   counts the status codes, first with the default TRUSTED_PROXY_COUNT=0 (target: 429s once the login
   rate, API_LOGIN_RATE 20/minute, is used up), then with TRUSTED_PROXY_COUNT=1 (each forwarded address
   its own client: no 429);
3. logs the clinician in through POST /api/v1/auth/token/ without a code, with a wrong one and with the
   right one, uses the token, logs out and uses it again; then five wrong codes and the right one
   (django-axes lockout);
4. checks that the token table holds no clear-text token.

Every request goes to 127.0.0.1; gunicorn is stopped and the database dropped at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-login-passphrase-42"  # noqa: S105 - a throwaway user in a throwaway database


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed() -> None:
    """Migrate the database of DATABASE_URL and create the clinician with a confirmed TOTP device."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from registry import services
    from registry.choices import Role
    from registry.models import Clinic

    call_command("migrate", verbosity=0)
    clinic = services.clinic_save(actor=None, clinic=Clinic(code="BENCH-01", name="Bench clinic", country="ES"))
    user = get_user_model().objects.create_user("bench-clinician", password=PASSWORD)
    services.membership_create(user=user, role=Role.CLINICIAN, clinic=clinic)
    TOTPDevice.objects.create(user=user, name="bench phone", confirmed=True)


def current_code() -> str:
    """Return the code the clinician's authenticator shows for a step the device has not used yet."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user__username="bench-clinician")
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    while True:
        totp.time = time.time()
        ahead = device.last_t + 1 - totp.t()
        if ahead <= 0:
            break
        if ahead <= device.tolerance:
            totp.time += ahead * device.step
            break
        time.sleep(1)
    return f"{totp.token():0{device.digits}d}"


class Server:
    """gunicorn on 127.0.0.1 with the given extra environment, stopped (process group) by stop()."""

    def __init__(self, env: dict) -> None:
        self.port = _free_port()
        command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                   "--workers", "1", "--log-level", "warning"]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603

    def wait_ready(self, timeout: float = 60.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/admin/login/", timeout=10)
                return self
            except OSError:  # refused while starting, or a slow first answer (imports)
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer in time")

    def post(self, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST",
        )
        return self._send(request)

    def get(self, path: str, headers: dict) -> tuple[int, dict]:
        return self._send(urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers))

    @staticmethod
    def _send(request) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                raw = response.read()
                return response.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw.startswith(b"{") else {}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)


def rotating_forwarded_for(server: Server, n: int = 40) -> Counter:
    """Return the status counts of the issue's loop: n bad logins, each with a new X-Forwarded-For."""
    bad = "/api/v1/auth/token/"
    return Counter(
        server.post(bad, {"username": f"u{i}", "password": "x"}, {"X-Forwarded-For": f"10.1.0.{i}"})[0]
        for i in range(1, n + 1)
    )


def main() -> int:
    server_url = os.environ.get("DATABASE_URL", DEFAULT_SERVER)
    name = f"bench_login_{os.getpid()}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    database_url = _with_database(server_url, name)
    os.environ.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings")
    base_env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_ENV", "CACHE_URL")}
    base_env.update(DATABASE_URL=database_url, DEBUG="false", ALLOWED_HOSTS="127.0.0.1", CACHE_URL="")
    servers: list[Server] = []
    try:
        started = time.perf_counter()
        seed()
        print(f"database {name} migrated and seeded in {time.perf_counter() - started:.1f} s")

        # 1. check --deploy in production.
        production = {**base_env, "DJANGO_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(50),
                      "ALLOWED_HOSTS": "registry.example.org"}  # fmt: skip
        check = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=production,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        found = re.search(r"System check identified (no|\d+) issues?", check.stdout + check.stderr)
        warnings = re.findall(r"\((\w+\.W\d+)\)", check.stdout + check.stderr)
        print(f"check --deploy (DJANGO_ENV=production): {found.group(0) if found else 'no summary'}; "
              f"warnings: {len(warnings)} {sorted(set(warnings))}")  # fmt: skip

        # 2. The reproduction, without and with a trusted proxy.
        for proxies in ("0", "1"):
            server = Server({**base_env, "TRUSTED_PROXY_COUNT": proxies})
            servers.append(server)
            server.wait_ready()
            counts = rotating_forwarded_for(server)
            print(f"40 failed logins, rotating X-Forwarded-For, TRUSTED_PROXY_COUNT={proxies}: "
                  + ", ".join(f"{count} x {code}" for code, count in sorted(counts.items())))  # fmt: skip
            server.stop()

        # 3. Two-factor token login, use, logout, lockout.
        server = Server({**base_env, "TRUSTED_PROXY_COUNT": "0"})
        servers.append(server)
        server.wait_ready()
        login = {"username": "bench-clinician", "password": PASSWORD}
        no_code = server.post("/api/v1/auth/token/", login)
        wrong = server.post("/api/v1/auth/token/", {**login, "otp_token": "000000"})
        time.sleep(1.5)  # django-otp's throttle: 1 s after one wrong code
        status, body = server.post("/api/v1/auth/token/", {**login, "otp_token": current_code()})
        auth = {"Authorization": f"Token {body.get('token')}"}
        # 4. Nothing stored in clear: no column of the token's row holds the token.
        from knox.models import AuthToken

        rows = list(AuthToken.objects.values())
        clear = sum(body.get("token") in map(str, row.values()) for row in rows)
        print(f"token rows: {len(rows)}, of which storing the token itself: {clear}")
        used = server.get("/api/v1/clinics/", auth)[0]
        listed = server.get("/api/v1/auth/tokens/", auth)
        logout = server.post("/api/v1/auth/logout/", {}, auth)[0]
        after = server.get("/api/v1/clinics/", auth)[0]

        def codes(answer: dict) -> list[str]:
            return [e["code"] for e in answer.get("errors", [])]

        print(f"token login without code: {no_code[0]} {codes(no_code[1])}; wrong code: {wrong[0]} {codes(wrong[1])}; "
              f"right code: {status} {codes(body)}, expiry {body.get('expiry')}")  # fmt: skip
        print(f"token use: {used}; token list: {listed[0]} ({len(listed[1]) if isinstance(listed[1], list) else '?'} "
              f"token); logout: {logout}; the same token afterwards: {after}")  # fmt: skip
        for _ in range(5):  # the successful login above reset the failure count (AXES_RESET_ON_SUCCESS)
            server.post("/api/v1/auth/token/", {**login, "otp_token": "000000"})
        locked = server.post("/api/v1/auth/token/", {**login, "otp_token": current_code()})
        print(f"after 5 failed logins, the right password and code: {locked[0]} "
              f"{[e['code'] for e in locked[1].get('errors', [])]}")  # fmt: skip

        return 0
    finally:
        for server in servers:
            server.stop()
        from django.db import connections

        connections.close_all()
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
