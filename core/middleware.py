"""One request-level guard for input that no view can handle, instead of a check in every view.

- A body larger than DATA_UPLOAD_MAX_MEMORY_SIZE answers 413 before anything reads it (DRF reads
  the request stream itself and would not hit Django's own limit).
- A NUL, a lone surrogate or bytes that are not UTF-8 in the query string or a form body, and a
  NUL in the path or a header, answer 400 naming the parameter. PostgreSQL text cannot hold a NUL
  (every lookup with one fails in the database), and Django silently turns undecodable bytes into
  U+FFFD, so the value a view would see is not what the client sent. API bodies are checked by
  their parsers (core.parsers), which name the field in the API's validation error.
- Two inputs Django's admin parses without a net answer 400 on every ModelAdmin, the third-party ones
  included: an action posted with selected ids that are not ids of the model (Django fails inside
  ``queryset.filter(pk__in=...)``), and a date-hierarchy year, month or day out of datetime's range.
- A view failing because the database is unavailable answers 503 with Retry-After (core.views);
  handler500 does the same for a failure in a middleware, when DEBUG shows no traceback page.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.contrib.admin import helpers
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

from core.parsers import printable_name, unstorable_problem
from core.views import (
    api_error_body,
    database_unavailable,
    database_unavailable_response,
    is_api_request,
    log_database_unavailable,
)

_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


class Refusal(Exception):
    """A request the guard answers itself: status, code (the API's error code), detail and the parameter."""

    def __init__(self, status: int, code: str, detail: str, attr: str | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.attr = status, code, detail, attr


def _decoded(raw: bytes, what: str) -> str:
    """Return ``raw`` as text, or raise Refusal if it is not UTF-8 or holds a NUL."""
    try:
        text = raw.decode("utf-8")  # strict: refuses encoded surrogates (ED A0 80) and stray bytes
    except UnicodeDecodeError as exc:
        raise Refusal(400, "parse_error", f"{what} is not valid UTF-8 (byte {exc.start}).") from exc
    problem = unstorable_problem(text)
    if problem:
        raise Refusal(400, "parse_error", f"{what}: {problem}")
    return text


def _wsgi_bytes(text: str) -> bytes:
    """Return the bytes the client sent for a WSGI environ string (PEP 3333: bytes decoded as latin-1)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:  # an ASGI server hands over decoded text
        return text.encode("utf-8", errors="surrogatepass")


def check_urlencoded(raw: str | bytes, where: str) -> None:
    """Raise Refusal for the first name or value of an urlencoded string that is not clean UTF-8 text."""
    if isinstance(raw, str):
        raw = _wsgi_bytes(raw)
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name_raw, _, value_raw = pair.partition(b"=")
        try:
            name = _decoded(unquote_to_bytes(name_raw.replace(b"+", b" ")), f"A {where} parameter name")
            _decoded(unquote_to_bytes(value_raw.replace(b"+", b" ")), f"The {where} parameter {name!r}")
        except Refusal as refusal:
            refusal.attr = printable_name(unquote_to_bytes(name_raw).decode("utf-8", errors="replace"))
            raise


def _check_path(request: HttpRequest) -> None:
    # %00 arrives percent-decoded as a NUL. Bytes that are not UTF-8 need no check here: Django has
    # already percent-encoded them again (repercent_broken_unicode), so a view sees "%FF", not U+FFFD.
    if "\x00" in request.path_info:
        raise Refusal(400, "parse_error", "The URL path contains a NUL character (U+0000).")


def _check_headers(request: HttpRequest) -> None:
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            name = key[5:].replace("_", "-").title()
            raise Refusal(400, "parse_error", f"The header {name} contains a NUL character (U+0000).", name)


def _check_body_size(request: HttpRequest) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0  # Django reads no body at all then
    if limit is not None and length > limit:
        raise Refusal(
            413, "request_too_large", f"The request body is {length} bytes; at most {limit} bytes are accepted."
        )


def _check_form_body(request: HttpRequest) -> None:
    content_type = request.content_type or ""
    try:
        if content_type == _FORM:
            check_urlencoded(request.body, "form")
        elif content_type == _MULTIPART and request.method == "POST":
            for name, values in request.POST.lists():
                for text in (name, *values):
                    if "\x00" in text:  # Django decoded the parts with errors="replace": no surrogates left
                        raise Refusal(
                            400,
                            "parse_error",
                            f"The form field {printable_name(name)!r} contains a NUL character.",
                            printable_name(name),
                        )
    except (RequestDataTooBig, TooManyFieldsSent, MultiPartParserError) as exc:
        raise Refusal(400, "parse_error", f"The form body cannot be read: {exc}") from exc


# The admin's date hierarchy builds datetime(year, month, day) and the next year, month or day from
# it, catching only ValueError: a huge year overflows, and year 9999 has no next year.
_DATE_PARTS = {"year": (1, 9998), "month": (1, 12), "day": (1, 31)}


def _check_date_hierarchy(request: HttpRequest, model_admin) -> None:
    if not model_admin.date_hierarchy:
        return
    for part, (low, high) in _DATE_PARTS.items():
        name = f"{model_admin.date_hierarchy}__{part}"
        for value in request.GET.getlist(name):
            if not (value.isascii() and value.isdigit() and len(value) <= 4 and low <= int(value) <= high):
                raise Refusal(400, "invalid", f"{name} must be a {part} from {low} to {high}.", name)


def _check_selected_ids(request: HttpRequest, model_admin) -> None:
    # Django's actions run queryset.filter(pk__in=<the posted values>) unchecked: "abc" is a 500.
    pk = model_admin.model._meta.pk
    for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
        try:
            pk.run_validators(pk.to_python(value))  # the validators: an integer id must also fit its column
        except ValidationError as exc:
            detail = f"{printable_name(value)[:40]!r} is not an id of a {model_admin.opts.verbose_name}."
            raise Refusal(400, "invalid", detail, helpers.ACTION_CHECKBOX_NAME) from exc


def refusal_response(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    """Return the response for a refused request: the API's error body on /api/, plain text elsewhere."""
    if is_api_request(request):
        return JsonResponse(
            api_error_body("client_error", refusal.code, refusal.detail, refusal.attr), status=refusal.status
        )
    return HttpResponse(refusal.detail, status=refusal.status, content_type="text/plain; charset=utf-8")


class RequestGuardMiddleware:
    """Refuse undecodable or oversized input before any view runs (see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            _check_body_size(request)
            _check_path(request)
            check_urlencoded(request.META.get("QUERY_STRING", ""), "query")
            _check_headers(request)
            if not is_api_request(request):  # DRF parses the API's bodies with core.parsers
                _check_form_body(request)
        except Refusal as refusal:
            return refusal_response(request, refusal)  # Django's handler logs it like any other 4xx
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        model_admin = getattr(view_func, "model_admin", None)  # set on every ModelAdmin view by get_urls()
        if model_admin is None:
            return None
        try:
            _check_date_hierarchy(request, model_admin)
            if request.method == "POST":
                _check_selected_ids(request, model_admin)
        except Refusal as refusal:
            return refusal_response(request, refusal)
        return None

    def process_exception(self, request, exception):
        # A view's failure only; one raised in a middleware reaches handler500 (core.views.server_error).
        if database_unavailable(exception):
            response = database_unavailable_response(request)
            log_database_unavailable(request, response, exception)
            return response
        return None


class CookieIndependentMiddleware:
    """Keep the responses a view marks ``cookie_independent`` (the public pages, issue 12) shareable.

    The session middleware adds Vary: Cookie whenever anything read the session (the audit
    middleware reads request.user on every request), which makes shared caches keep one copy per
    visitor; and it re-sends a logged-in user's session cookie on every response
    (SESSION_SAVE_EVERY_REQUEST). A page that is the same for everyone drops both: a shared cache
    must never store, and hand out, somebody's session or CSRF cookie. Listed above
    SessionMiddleware, so it sees the response after it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not getattr(response, "cookie_independent", False):
            return response
        for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
            response.cookies.pop(name, None)
        if response.has_header("Vary"):
            kept = [v.strip() for v in response["Vary"].split(",") if v.strip() and v.strip().lower() != "cookie"]
            if kept:
                response["Vary"] = ", ".join(kept)
            else:
                del response["Vary"]
        return response
