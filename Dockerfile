# The registry's one image: web (gunicorn), migrations, Celery worker and beat.
# Build and run everything with docker compose (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings

WORKDIR /app

# Requirements first, so code changes do not reinstall them. Every pin ships a
# manylinux wheel (psycopg[binary], numpy, scipy), so no compiler is needed.
COPY requirements/base.txt requirements/base.txt
RUN pip install -r requirements/base.txt

COPY . .

# collectstatic only imports the settings; a DATABASE_URL keeps them from starting the
# embedded PostgreSQL (config/embedded_db.py), and nothing connects to it.
RUN DATABASE_URL=postgres://build@localhost/build python manage.py collectstatic --noinput

# The code stays root-owned and read-only for the process; it writes nothing under /app.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /app --shell /usr/sbin/nologin registry
USER registry

EXPOSE 8000
# --worker-tmp-dir: the heartbeat file on tmpfs, so slow container disks do not stall workers.
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--access-logfile", "-", "--worker-tmp-dir", "/dev/shm"]
