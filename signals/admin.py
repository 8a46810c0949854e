"""The Signals page: the latest run's signals and lot-cluster alerts, what is new, and "mark reviewed".

Registry administrators and safety reviewers only (signals.selectors.may_review_signals): anyone
else does not see the page listed and gets 403 at its address. Runs are never edited here; a
review is a new, append-only SignalReview made through signals.services.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.text import validate_safe_free_text
from reports.services import nightly_cutoff
from signals import links, selectors, services
from signals.choices import LOT_CLUSTER_DAYS, LOT_CLUSTER_MIN_EVENTS
from signals.display import outcome_label, signal_figures
from signals.models import SignalRow, SignalRun

PAGE_TEMPLATE = "admin/signals/signalrun/signals.html"
REVIEW_TEMPLATE = "admin/signals/signalrun/review_form.html"
# Signals shown on the page; a run with more says so (they stay in the database).
SIGNALS_SHOWN = 1000
RUNS_SHOWN = 20


class ReviewForm(forms.Form):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        max_length=4000,
        validators=[validate_safe_free_text],
        error_messages={"required": "Say what was reviewed."},
        help_text="Required: what was looked at and what follows (e.g. 'Line listing checked; 3 of 4 cases at one "
        "clinic in March; lot quarantined').",
    )


@admin.register(SignalRun)
class SignalRunAdmin(admin.ModelAdmin):
    """The changelist is the Signals page; a run's own page is the Signals page showing that run."""

    def get_queryset(self, request):
        return selectors.runs_for_user(request.user)

    def has_module_permission(self, request) -> bool:
        return selectors.may_review_signals(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return selectors.may_review_signals(request.user)

    def has_add_permission(self, request) -> bool:
        return False  # runs come from the schedule, the command line or "Run now"

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a run is a snapshot

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("run-now/", view(self.run_now_view), name="signals_signalrun_run_now"),
            path("<int:run_id>/review/<int:row_id>/", view(self.review_view), name="signals_signalrun_review"),
            *super().get_urls(),
        ]

    def _require_reviewer(self, request) -> None:
        if not selectors.may_review_signals(request.user):
            raise PermissionDenied

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._require_reviewer(request)
        run = selectors.run_for_user(request.user, object_id)
        return HttpResponseRedirect(reverse("admin:signals_signalrun_changelist") + f"?run={run.pk}")

    def changelist_view(self, request, extra_context=None):
        self._require_reviewer(request)
        run_id = request.GET.get("run")
        run = selectors.run_for_user(request.user, run_id) if run_id else selectors.latest_succeeded_run(request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": "Signals",
            "opts": self.model._meta,
            "run": run,
            "runs": list(selectors.runs_for_user(request.user)[:RUNS_SHOWN]),
            "min_events": LOT_CLUSTER_MIN_EVENTS,
            "days": LOT_CLUSTER_DAYS,
            "next_cutoff": nightly_cutoff(),
            **(self._run_context(run) if run is not None else {}),
            **(extra_context or {}),
        }
        return TemplateResponse(request, PAGE_TEMPLATE, context)

    def _run_context(self, run: SignalRun) -> dict:
        rows = list(selectors.signals_of_run(run)[: SIGNALS_SHOWN + 1])
        more = len(rows) > SIGNALS_SHOWN
        rows = rows[:SIGNALS_SHOWN]
        reviews = selectors.reviews_by_key(row.key for row in rows)
        signals = [
            {
                "row": row,
                **signal_figures(row),
                "reviews": reviews.get(row.key, []),
                "listing_url": links.signal_listing_url(
                    attribute=row.attribute,
                    value=row.value,
                    outcome=row.outcome,
                    cutoff_on=run.cutoff_on,
                    run_id=run.pk,
                ),
                "review_url": reverse("admin:signals_signalrun_review", args=[run.pk, row.pk]),
            }
            for row in rows
        ]
        alerts = [
            {
                "alert": alert,
                "category": outcome_label(alert.category),
                "listing_url": links.alert_listing_url(
                    product_lot=alert.product_lot,
                    category=alert.category,
                    first_onset_on=alert.first_onset_on,
                    last_onset_on=alert.last_onset_on,
                    run_id=run.pk,
                ),
            }
            for alert in selectors.alerts_of_run(run)
        ]
        return {"signals": signals, "more_signals": more, "alerts": alerts}

    def run_now_view(self, request):
        """Queue a run at yesterday's cut-off (POST only); its email goes out if it finds something new."""
        self._require_reviewer(request)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if services.signal_run_request(actor=request.user, cutoff_on=nightly_cutoff()):
            messages.success(request, "A signal run is queued; this page shows it when it is done.")
        else:
            messages.error(request, "The task queue cannot be reached now; try again in a minute.")
        return HttpResponseRedirect(reverse("admin:signals_signalrun_changelist"))

    def review_view(self, request, run_id: int, row_id: int):
        """Show a signal with its reviews and take a new review (the comment is required)."""
        self._require_reviewer(request)
        run = selectors.run_for_user(request.user, run_id)
        row_pk = selectors.parse_id(row_id)
        row = SignalRow.objects.filter(pk=row_pk, run=run).first() if row_pk is not None else None
        if row is None or not row.is_signal:
            raise Http404("No such signal in this run.")
        form = ReviewForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.signal_review_create(actor=request.user, row=row, comment=form.cleaned_data["comment"])
            except ValidationError as exc:
                form.add_error("comment", exc.message_dict.get("comment", exc.messages))
            else:
                messages.success(request, f"{row.attribute} = {row.value}, {row.outcome}: marked reviewed.")
                return HttpResponseRedirect(reverse("admin:signals_signalrun_changelist") + f"?run={run.pk}")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Review the signal {row.attribute} = {row.value}, {outcome_label(row.outcome)}",
            "opts": self.model._meta,
            "run": run,
            "row": row,
            "form": form,
            "reviews": selectors.reviews_by_key([row.key]).get(row.key, []),
            "listing_url": links.signal_listing_url(
                attribute=row.attribute, value=row.value, outcome=row.outcome, cutoff_on=run.cutoff_on, run_id=run.pk
            ),
        }
        return TemplateResponse(request, REVIEW_TEMPLATE, context)
