"""A signal's figures as the Signals page and the email print them (reports.documents.formatting: no exponents)."""

from __future__ import annotations

from reports.choices import OUTCOME_LABELS
from reports.documents.formatting import p_value, significant, with_interval
from signals.models import SignalRow


def outcome_label(code: str) -> str:
    """Return the outcome's label ("Infection", "Serious adverse event"), or the code for one unknown here."""
    return OUTCOME_LABELS.get(code, code)


def signal_figures(row: SignalRow) -> dict[str, str]:
    """Return the row's outcome label, kinds of signal, ratio with its interval, q-value, PRR and chi-square."""
    kinds = [kind for kind, on in (("cohort", row.signal), ("disproportionality (Evans)", row.evans_signal)) if on]
    return {
        "outcome": outcome_label(row.outcome),
        "kinds": " and ".join(kinds),
        "ratio": with_interval(row.ratio, row.ratio_ci_low, row.ratio_ci_high),
        "q_value": p_value(row.q_value),
        "prr": significant(row.prr),
        "chi2": significant(row.chi2_yates),
    }
