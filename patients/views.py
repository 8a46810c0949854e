"""The patient's pages: no account, no JavaScript, mobile first, English or Spanish.

Every view starts from the token in the address: an unknown, expired or revoked token, or a page of
another procedure, all answer the same 404 page. Every request counts against two rate limits (per
token and per client address) before the token is looked up, and a POST body over PATIENT_MAX_BODY_BYTES
answers 413. Nothing identifying the patient is shown: the clinic, its phone, the procedure's date and site.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from core.auth import client_ip_address
from core.dates import today
from patients import selectors, services
from patients.choices import DIARY_LAST_DAY, PATIENT_LANGUAGES, SITE_NAMES, RedFlag
from patients.forms import DiaryForm, ProblemForm
from patients.tokens import token_hash

LANG_COOKIE = "patient_lang"


def _setting(name: str, default):
    return getattr(settings, name, default)


def _language(request, link=None) -> str:
    chosen = request.GET.get("lang") or request.COOKIES.get(LANG_COOKIE)
    if chosen in PATIENT_LANGUAGES:
        return chosen
    return link.language if link is not None else "en"


def _page(request, template: str, context: dict, *, link=None, status: int = 200) -> HttpResponse:
    language = _language(request, link)
    with translation.override(language):
        response = render(request, template, {**context, "lang": language, "link": link}, status=status)
    response["Content-Language"] = language
    response["Cache-Control"] = "no-store"  # a patient's page is nobody else's, shared devices included
    return response


def _remember_language(request, response: HttpResponse) -> HttpResponse:
    # A chosen language sticks for the next pages (and the redirect after a POST).
    if request.GET.get("lang") in PATIENT_LANGUAGES:
        response.set_cookie(LANG_COOKIE, request.GET["lang"], max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response


def not_found(request) -> HttpResponse:
    """Return the one 404 page every refused token gets (nothing in it depends on the token)."""
    return _page(request, "patients/not_found.html", {}, status=404)


def _limited(request, token: str) -> bool:
    # Both limits count every request; the token's key is its hash (a token never reaches the cache).
    per_token = is_ratelimited(
        request,
        group="patients:token",
        key=lambda _group, _request: token_hash(token),
        rate=_setting("PATIENT_RATE_PER_TOKEN", "30/h"),
        increment=True,
    )
    per_address = is_ratelimited(
        request,
        group="patients:address",
        key=lambda _group, req: client_ip_address(req) or "",
        rate=_setting("PATIENT_RATE_PER_ADDRESS", "60/h"),
        increment=True,
    )
    return per_token or per_address


def _too_big(request) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > _setting("PATIENT_MAX_BODY_BYTES", 16_384)


def patient_view(view):
    """Return ``view`` behind the guards: size cap, rate limits, then the token (404 when refused)."""

    def wrapped(request, token: str, **kwargs):
        if request.method == "POST" and _too_big(request):
            return HttpResponse("Request too large.", status=413, content_type="text/plain; charset=utf-8")
        if _limited(request, token):
            response = _page(request, "patients/too_many.html", {}, status=429)
            response["Retry-After"] = "3600"
            return response
        link = selectors.link_for_token(token)
        if link is None:
            return not_found(request)
        return _remember_language(request, view(request, link, token, **kwargs))

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _base(link, token: str) -> dict:
    procedure = link.procedure
    day = services.diary_day(procedure)
    return {
        "token": token,
        "clinic": procedure.clinic,
        "phone_href": "".join(ch for ch in procedure.clinic.phone if ch.isdigit() or ch == "+"),
        "procedure": procedure,
        "site_name": SITE_NAMES.get(procedure.site, procedure.site),
        "day": day,
        "diary_open": 0 <= day <= DIARY_LAST_DAY,
        "diary_closed": day > DIARY_LAST_DAY,
    }


def _flag_labels(report) -> list[str]:
    return [RedFlag(code).label for code in report.red_flags if code in RedFlag.values]


@require_http_methods(["GET"])
@patient_view
def home(request, link, token):
    """The procedure's page: the diary so far, today's entry, and the problem form."""
    context = _base(link, token)
    diary = selectors.diary_of(link.procedure)
    context["diary"] = diary
    context["today_entry"] = next((e for e in diary if e.entry_on == today()), None)
    context["problems"] = selectors.problems_of(link.procedure)
    return _page(request, "patients/home.html", context, link=link)


def _form_data(form) -> dict:
    return {name: form.cleaned_data.get(name) for name in form.fields}


@require_http_methods(["GET", "POST"])
@patient_view
def diary(request, link, token):
    """Today's diary day: a new entry, or today's entry changed (earlier days are read-only)."""
    context = _base(link, token)
    if not context["diary_open"]:
        return HttpResponseRedirect(reverse("patients:home", args=[token]))
    procedure = link.procedure
    current = next((e for e in selectors.diary_of(procedure) if e.day == context["day"]), None)
    if request.method == "POST":
        form = DiaryForm(request.POST, site=procedure.site)
        if form.is_valid():
            try:
                services.patient_diary_save(link=link, data=_form_data(form), address=client_ip_address(request))
            except ValidationError as exc:
                _attach(form, exc)
            else:
                return HttpResponseRedirect(reverse("patients:diary_saved", args=[token]))
    else:
        initial = {name: getattr(current, name) for name in DiaryForm.base_fields} if current else {}
        form = DiaryForm(initial=initial, site=procedure.site)
    return _page(request, "patients/diary.html", {**context, "form": form, "current": current}, link=link)


def _attach(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


@require_http_methods(["GET"])
@patient_view
def diary_saved(request, link, token):
    """What today's entry means: contact the clinic now (red flags), or thanks."""
    context = _base(link, token)
    entry = next((e for e in selectors.diary_of(link.procedure) if e.day == context["day"]), None)
    if entry is None:
        return HttpResponseRedirect(reverse("patients:home", args=[token]))
    return _page(request, "patients/sent.html", {**context, "report": entry, "flags": _flag_labels(entry)}, link=link)


@require_http_methods(["GET", "POST"])
@patient_view
def problem(request, link, token):
    """Report a problem: what, since when, how bad, and the warning signs."""
    context = _base(link, token)
    site = link.procedure.site
    if request.method == "POST":
        form = ProblemForm(request.POST, site=site)
        if form.is_valid():
            try:
                report = services.patient_problem_report(
                    link=link, data=_form_data(form), address=client_ip_address(request)
                )
            except ValidationError as exc:
                _attach(form, exc)
            else:
                return HttpResponseRedirect(reverse("patients:problem_sent", args=[token, report.pk]))
    else:
        form = ProblemForm(site=site)
    return _page(request, "patients/problem.html", {**context, "form": form}, link=link)


@require_http_methods(["GET"])
@patient_view
def problem_sent(request, link, token, report_id: int):
    """The answer to a problem report (only a report of this link's procedure)."""
    report = selectors.problem_of(link.procedure, report_id)
    if not report:
        return not_found(request)
    context = _base(link, token)
    return _page(request, "patients/sent.html", {**context, "report": report, "flags": _flag_labels(report)}, link=link)
