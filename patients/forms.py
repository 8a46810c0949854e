"""The patient's forms (diary day, problem) and the clinic staff's (issue, revoke, confirm, reject)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from core.text import validate_safe_free_text
from events.choices import Category, Grade
from patients.choices import Severity, Swelling
from patients.redflags import SPINE_SITES
from registry.admin_base import SafeAutocompleteSelect

TEXT_MAX = 2000  # characters of free text a patient may send (the body itself is capped in the view)


def _yes(label):
    return forms.BooleanField(label=label, required=False)


class DiaryForm(forms.Form):
    """Today's solicited reactions. Spine procedures also ask about new weakness or numbness."""

    pain = forms.IntegerField(
        label=_("Pain at the injection site (0 = none, 10 = worst imaginable)"),
        min_value=0,
        max_value=10,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 0, "max": 10}),
    )
    swelling = forms.ChoiceField(label=_("Swelling"), choices=Swelling.choices, widget=forms.RadioSelect)
    redness = _yes(_("Redness around the injection site"))
    redness_cm = forms.DecimalField(
        label=_("How far the redness spreads from the injection point (cm)"),
        required=False,
        min_value=Decimal(0),
        max_value=Decimal(100),
        max_digits=4,
        decimal_places=1,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.5"}),
    )
    warmth = _yes(_("The injection site feels warm"))
    temperature_c = forms.DecimalField(
        label=_("Measured temperature (°C), if you took it"),
        required=False,
        min_value=Decimal(34),
        max_value=Decimal(43),
        max_digits=3,
        decimal_places=1,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.1"}),
    )
    discharge = _yes(_("Discharge (fluid or pus) from the injection site"))
    flu_like = _yes(_("Flu-like symptoms (chills, aches)"))
    fatigue = _yes(_("Unusual tiredness"))
    weakness_numbness = _yes(_("New weakness or numbness in the legs or arms"))

    def __init__(self, *args, site: str, **kwargs):
        super().__init__(*args, **kwargs)
        if site not in SPINE_SITES:
            del self.fields["weakness_numbness"]

    def clean(self):
        data = super().clean()
        if data.get("redness_cm") and not data.get("redness"):
            self.add_error("redness_cm", _("Tick redness too, or leave the distance empty."))
        return data


class ProblemForm(forms.Form):
    """A problem after the diary (or beside it): what, since when, how bad, and the warning signs."""

    what = forms.CharField(
        label=_("What is the problem?"),
        max_length=TEXT_MAX,
        validators=[validate_safe_free_text],
        widget=forms.Textarea(attrs={"rows": 5, "maxlength": TEXT_MAX}),
        help_text=_("In your own words. Please do not write your name or other personal details."),
    )
    since_on = forms.DateField(
        label=_("Since when?"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})
    )
    severity = forms.ChoiceField(label=_("How bad is it?"), choices=Severity.choices, widget=forms.RadioSelect)
    warmth = _yes(_("The injection site feels warm"))
    redness = _yes(_("Redness around the injection site that is spreading"))
    temperature_c = DiaryForm.base_fields["temperature_c"]
    discharge = _yes(_("Discharge (fluid or pus) from the injection site"))
    weakness_numbness = _yes(_("New weakness or numbness in the legs or arms"))

    def __init__(self, *args, site: str, **kwargs):
        super().__init__(*args, **kwargs)
        if site not in SPINE_SITES:
            del self.fields["weakness_numbness"]


# --- Clinic staff (admin) ---------------------------------------------------------------------


class IssueLinkForm(forms.Form):
    procedure = forms.ModelChoiceField(queryset=None, help_text="A procedure of your clinic (search by its id).")

    def __init__(self, *args, procedures, field, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        # The widget first: setting the queryset hands the field's choices to the widget in place.
        self.fields["procedure"].widget = SafeAutocompleteSelect(field, admin_site)  # a malformed id: no 500
        self.fields["procedure"].queryset = procedures


class RevokeLinkForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        validators=[validate_safe_free_text],
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required, e.g. 'handout lost', 'wrong procedure'.",
    )


class ConfirmReportForm(forms.Form):
    """Link an existing event of the procedure, or describe the adverse event to create."""

    event = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Link to an existing event of this procedure",
        empty_label="(create a new event)",
    )
    category = forms.ChoiceField(choices=[("", "---------"), *Category.choices], required=False)
    term = forms.CharField(max_length=200, required=False, validators=[validate_safe_free_text], label="Verbatim term")
    grade = forms.TypedChoiceField(
        choices=[("", "---------"), *Grade.choices], coerce=int, empty_value=None, required=False, label="CTCAE grade"
    )
    onset_on = forms.DateField(
        required=False, label="Onset date", widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})
    )

    def __init__(self, *args, events, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].queryset = events

    def clean(self):
        data = super().clean()
        if data.get("event") is None:
            for name in ("category", "term", "grade", "onset_on"):
                if data.get(name) in (None, ""):
                    self.add_error(name, "Required when no existing event is linked.")
        return data


class RejectReportForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        validators=[validate_safe_free_text],
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required: why this is not an adverse event (e.g. 'expected day-1 soreness, resolved').",
    )
