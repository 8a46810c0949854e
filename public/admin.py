"""Publications in the admin: registry administrators publish a succeeded run and withdraw with a reason.

A publication is never edited: the change page is read-only, with a "Withdraw" page beside it. Both
writes go through public.services (the same checks as anywhere else).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.text import validate_safe_free_text
from public import services
from public.models import Publication
from registry.selectors import is_registry_admin
from reports.choices import RunStatus
from reports.models import IncidenceRun


class PublicationForm(forms.ModelForm):
    class Meta:
        model = Publication
        fields = ["run", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "run" in self.fields:
            # Only a succeeded run with a provider comparison has anything to publish.
            self.fields["run"].queryset = (
                IncidenceRun.objects.filter(status=RunStatus.SUCCEEDED, provider_comparisons__isnull=False)
                .distinct()
                .order_by("-created_at")
            )


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        validators=[validate_safe_free_text],
        help_text="Shown on the withdrawn publication's page.",
    )


@admin.register(Publication)
class PublicationAdmin(admin.ModelAdmin):
    form = PublicationForm
    list_display = ["__str__", "published_at", "published_by", "note", "withdrawn_at", "public_link"]
    list_select_related = ["published_by", "run"]
    fields = ["run", "note", "published_at", "published_by", "withdrawn_at", "withdrawn_by", "withdrawal_reason"]
    readonly_fields = ["published_at", "published_by", "withdrawn_at", "withdrawn_by", "withdrawal_reason"]

    def get_fields(self, request, obj=None):
        return ["run", "note"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj is not None else []

    @admin.display(description="public page")
    def public_link(self, obj: Publication) -> str:
        url = reverse("public:publication", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, url)

    # Registry administrators only; nobody edits or deletes a publication.
    def has_module_permission(self, request) -> bool:
        return is_registry_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_registry_admin(request.user)

    def has_add_permission(self, request) -> bool:
        return is_registry_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        return {}

    def save_model(self, request, obj, form, change):
        """Publish through the service; ``obj`` becomes the stored publication."""
        stored = services.publication_create(
            actor=request.user, run=form.cleaned_data["run"], note=form.cleaned_data.get("note", "")
        )
        for field in Publication._meta.concrete_fields:
            setattr(obj, field.attname, getattr(stored, field.attname))
        obj._state.adding = False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        # A malformed id (the admin answers it with its "does not exist" redirect) gets no link.
        if str(object_id).isascii() and str(object_id).isdigit():
            extra_context["withdraw_url"] = reverse("admin:public_publication_withdraw", args=[int(object_id)])
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        withdraw = self.admin_site.admin_view(self.withdraw_view)
        return [path("<int:pk>/withdraw/", withdraw, name="public_publication_withdraw"), *super().get_urls()]

    def withdraw_view(self, request, pk: int):
        """Return the withdrawal form (GET) or withdraw the publication with the reason given (POST)."""
        if not is_registry_admin(request.user):
            raise PermissionDenied
        publication = Publication.objects.filter(pk=pk).first()
        if publication is None:
            raise Http404
        form = WithdrawForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.publication_withdraw(
                    actor=request.user, publication=publication, reason=form.cleaned_data["reason"]
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"{publication} is withdrawn: its pages answer 410 Gone.")
                return HttpResponseRedirect(reverse("admin:public_publication_change", args=[pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Withdraw {publication}",
            "publication": publication,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/public/publication/withdraw.html", context)
