"""The one-page handout a clinic prints for the patient: the link, its QR code (inline SVG, drawn here,
no request anywhere), the clinic's phone and the infection warning signs, in the link's language."""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.urls import reverse
from django.utils.safestring import mark_safe


def patient_url(token: str) -> str:
    """Return the absolute address of the patient's pages for ``token`` (SITE_URL + /p/<token>/)."""
    return settings.SITE_URL.rstrip("/") + reverse("patients:home", args=[token])


def qr_svg(url: str) -> str:
    """Return an inline SVG QR code of ``url`` (safe: drawn by qrcode from a URL we built, no user markup)."""
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=15, border=2)
    svg = image.to_string(encoding="unicode")
    svg = svg.replace("<svg ", '<svg role="img" aria-label="QR code of the link" ', 1)
    return mark_safe(svg)  # noqa: S308 - generated markup, the URL is encoded as modules, not text
