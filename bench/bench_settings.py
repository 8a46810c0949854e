"""Settings of bench/bench_api.py's gunicorn only: the product's settings plus the baseline view's URLconf.

The baseline view (bench/bench_urls.py) never ships: config.urls does not know it.
"""

import os

from config.settings import *  # noqa: F403 - the product's settings, unchanged but for the lines below
from config.settings import DATABASES

ROOT_URLCONF = "bench.bench_urls"
# The product opens a connection per request (CONN_MAX_AGE 0); --conn-max-age measures the alternative.
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "0"))
