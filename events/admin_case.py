"""The case's life on the event's admin page: its timeline, "Add follow-up" and "Record medical review".

Both forms call the same services as the API (events.services); a rule they break shows against its
field and nothing is stored.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.text import validate_safe_free_text
from events import services
from events.choices import FOLLOW_UP_FIELDS, SERIOUS_CRITERIA, Expectedness
from events.models import AdverseEvent, MedicalReview
from events.selectors import expected_by_rsi, may_record_review
from events.timeline import case_timeline, display_value
from registry import selectors as registry_selectors

ADD_FOLLOW_UP_URL_NAME = "events_adverseevent_add_follow_up"
RECORD_REVIEW_URL_NAME = "events_adverseevent_record_review"

STALE_FOLLOW_UP = (
    "Someone else changed this event after you opened the form. Nothing was recorded; the event's fields "
    "below now show its current values: check them and record the follow-up again."
)
ISO_DATE = forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


class FollowUpForm(forms.Form):
    """What a follow-up reports: when, what was learned, and the event's fields as they now stand."""

    received_on = forms.DateField(
        label="Information received on",
        widget=ISO_DATE,
        help_text="When the clinic learned what this follow-up reports (not before the awareness date).",
    )
    narrative = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
        validators=[validate_safe_free_text],
        help_text="What was learned: course, treatment, results (no patient names).",
    )

    # The event's version the form was filled from: its fields are sent whole, so a form opened before
    # someone else's edit would silently undo it.
    expected_version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, event: AdverseEvent, **kwargs):
        super().__init__(*args, **kwargs)
        self.event = event
        self.fields["expected_version"].initial = event.version
        for name in FOLLOW_UP_FIELDS:
            model_field = AdverseEvent._meta.get_field(name)
            formfield = model_field.formfield()
            if model_field.get_internal_type() == "DateField":
                formfield.widget = ISO_DATE
            formfield.initial = getattr(event, name)
            self.fields[name] = formfield

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("expected_version") not in (None, self.event.version):
            raise ValidationError(STALE_FOLLOW_UP, code="stale")
        return cleaned

    def refreshed(self) -> FollowUpForm:
        """Return this form again with the event's fields (and version) as they now are, the report kept."""
        data = self.data.copy()
        for name in FOLLOW_UP_FIELDS:
            data.pop(name, None)
            value = self.fields[name].prepare_value(getattr(self.event, name))
            if isinstance(self.fields[name], forms.BooleanField):
                if value:
                    data[name] = "on"
            else:
                data[name] = "" if value is None else str(value)
        data["expected_version"] = str(self.event.version)
        form = FollowUpForm(data, event=self.event)
        form.is_valid()
        form.add_error(None, STALE_FOLLOW_UP)
        return form

    def changes(self) -> dict:
        """Return the event fields as the form gives them (the service keeps only the ones that changed)."""
        return {name: self.cleaned_data.get(name) for name in FOLLOW_UP_FIELDS}

    def field_groups(self):
        """Return (title, bound fields) for the template: the report, then the event's changeable fields."""
        report = [self["received_on"], self["narrative"]]
        return [
            ("Follow-up report", report),
            ("The event as this follow-up leaves it", [self[n] for n in FOLLOW_UP_FIELDS]),
        ]


class MedicalReviewForm(forms.ModelForm):
    class Meta:
        model = MedicalReview
        fields = (
            "serious",
            *SERIOUS_CRITERIA.values(),
            "causality_procedure",
            "causality_product",
            "expectedness",
            "comment",
        )
        widgets = {"comment": forms.Textarea(attrs={"rows": 4, "cols": 80})}

    def _post_clean(self):
        # The service validates the review (with its event and reviewer); the form only parses the input.
        pass


def _apply_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for name, found in exc.message_dict.items():
        form.add_error(name if name in form.fields else None, found)


class CaseLifecycleAdminMixin:
    """Adds the timeline and the follow-up and review pages to the adverse event's admin (a ScopedAdmin)."""

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/follow-up/add/", wrap(self.add_follow_up_view), name=ADD_FOLLOW_UP_URL_NAME),
            path("<path:object_id>/review/add/", wrap(self.record_review_view), name=RECORD_REVIEW_URL_NAME),
            *super().get_urls(),
        ]

    def _case(self, request, object_id) -> AdverseEvent:
        event = self.get_object(request, unquote(object_id))  # through get_queryset: another clinic's is 404
        if event is None:
            raise Http404("No adverse event with this id among the rows you may see.")
        return event

    def may_add_follow_up(self, request, event) -> bool:
        """Return True when the user may add a follow-up: a writer of the event's clinic, the event not frozen."""
        return (
            event.retracted_at is None
            and self.has_change_permission(request, event)
            and registry_selectors.can_write_clinic(request.user, event.procedure.clinic_id)
        )

    def _page(self, request, event, form, *, title: str, template: str, **extra):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": str(event),
            "event": event,
            "form": form,
            "opts": self.opts,
            "original": event,
            "has_view_permission": True,
            "change_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[quote(event.pk)]),
            "media": self.media + form.media,
            **extra,
        }
        return TemplateResponse(request, template, context)

    def add_follow_up_view(self, request, object_id):
        """Return the follow-up form, or record the follow-up through the service and go back to the event."""
        event = self._case(request, object_id)
        if not self.may_add_follow_up(request, event):
            raise PermissionDenied
        form = FollowUpForm(request.POST if request.method == "POST" else None, event=event)
        valid = request.method == "POST" and form.is_valid()
        if form.has_error(NON_FIELD_ERRORS, "stale"):
            form = form.refreshed()
        if valid:
            try:
                report = services.follow_up_report_create(
                    actor=request.user,
                    event=event,
                    received_on=form.cleaned_data["received_on"],
                    narrative=form.cleaned_data["narrative"],
                    changes=form.changes(),
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                changed = len(report.changes)
                messages.success(request, f"Follow-up {report.number} recorded ({changed} field(s) changed).")
                return HttpResponseRedirect(
                    reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[quote(event.pk)])
                )
        return self._page(
            request, event, form, title="Add follow-up", template="admin/events/adverseevent/follow_up_form.html"
        )

    def record_review_view(self, request, object_id):
        """Return the medical review form (expectedness pre-filled from the reference safety information), or
        record the review through the service and go back to the event."""
        event = self._case(request, object_id)
        if not may_record_review(request.user):
            raise PermissionDenied
        basis = expected_by_rsi(event)
        initial = {"expectedness": Expectedness.EXPECTED if basis else Expectedness.UNEXPECTED}
        form = MedicalReviewForm(request.POST if request.method == "POST" else None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                services.medical_review_record(actor=request.user, event=event, **form.cleaned_data)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, "Medical review recorded; the site's own assessment is unchanged.")
                return HttpResponseRedirect(
                    reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[quote(event.pk)])
                )
        site = [
            ("Seriousness", "Serious" if event.serious else "Non-serious"),
            *(
                (str(AdverseEvent._meta.get_field(n).verbose_name), display_value(n, getattr(event, n)))
                for n in ("causality_procedure", "causality_product", "expectedness")
            ),
        ]
        return self._page(
            request,
            event,
            form,
            title="Record medical review",
            template="admin/events/adverseevent/review_form.html",
            basis=basis,
            site_assessment=site,
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            info = (self.opts.app_label, self.opts.model_name)
            context["case"] = {
                "timeline": case_timeline(obj),
                "add_follow_up_url": reverse(f"admin:{info[0]}_{info[1]}_add_follow_up", args=[quote(obj.pk)])
                if self.may_add_follow_up(request, obj)
                else None,
                "record_review_url": reverse(f"admin:{info[0]}_{info[1]}_record_review", args=[quote(obj.pk)])
                if may_record_review(request.user) and obj.retracted_at is None
                else None,
            }
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)
