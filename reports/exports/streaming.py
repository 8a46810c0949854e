"""Stream a Django queryset's SQL through PostgreSQL COPY ... TO STDOUT, chunk by chunk."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.sql.where import WhereNode

from reports.exports.models import ExportLog
from reports.exports.services import export_log_finish

CHUNK_BYTES = 256 * 1024


def compose_select(qs: QuerySet) -> str:
    """Return the SELECT of ``qs`` with its parameters bound client-side (COPY takes no bind parameters).

    psycopg quotes every value (compose_sql is its mogrify), so filter values typed by a
    user end up as literals, never as SQL.
    """
    try:
        sql, params = qs.query.sql_with_params()
    except EmptyResultSet:
        # A filter that can match nothing (an empty IN list, a value no row can hold) compiles to no
        # SQL at all; keep the columns and select no rows, so the download is a header and nothing else.
        query = qs.query.clone()
        query.where = WhereNode()
        sql, params = query.sql_with_params()
        sql = f"SELECT * FROM ({sql}) AS nothing WHERE false"  # noqa: S608 - compiled by Django, no user text
    return connection.ops.compose_sql(sql, params)


def header_line(columns: Sequence[str]) -> bytes:
    """Return the CSV header row, quoted as COPY quotes its rows."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(columns)
    return out.getvalue().encode()


def copy_csv_stream(*, select_sql: str, columns: Sequence[str], log: ExportLog) -> Iterator[bytes]:
    """Yield the header, then the rows of ``select_sql`` as CSV from COPY, then record the row count in ``log``.

    The header goes out before the query runs, so the download starts at once even when
    PostgreSQL sorts for a while. COPY sends one message per row; they are gathered into
    chunks of about CHUNK_BYTES so the WSGI server writes few, large blocks. The generator
    runs after the view returned, still inside the request (Django closes the connection at
    request_finished, after the last chunk). A download abandoned half-way closes the
    generator: psycopg cancels the COPY and the log entry stays without a row count.
    """
    yield header_line(columns)
    copy_sql = f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv)"
    with transaction.atomic(), connection.cursor() as cursor:
        # Dates as YYYY-MM-DD whatever the server's default DateStyle; LOCAL ends with the transaction.
        cursor.execute("SET LOCAL datestyle = 'ISO, YMD'")
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        buf = bytearray()
        with raw.copy(copy_sql) as copy:
            for data in copy:
                buf += data
                if len(buf) >= CHUNK_BYTES:
                    yield bytes(buf)
                    buf.clear()
        if buf:
            yield bytes(buf)
        rows = raw.rowcount
    export_log_finish(log=log, row_count=rows)
