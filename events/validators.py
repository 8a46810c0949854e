"""Return whether an adverse event's codes have the shape their dictionaries give them."""

from __future__ import annotations

import re

from django.core.validators import RegexValidator

# A MedDRA code (LLT, PT, HLT, HLGT or SOC) is eight digits; real dictionary look-up comes
# with MedDRA coding of safety cases. The CHECK constraint ae_meddra_code_shape uses this same
# pattern: \A and \Z, not ^ and $, because Python's $ also matches before a trailing newline and
# PostgreSQL's does not (both read \A and \Z alike). Empty is allowed (the code is optional), so
# the OpenAPI pattern drf-spectacular derives from it describes the stored values truthfully.
MEDDRA_CODE_PATTERN = r"\A(?:[0-9]{8})?\Z"
MEDDRA_CODE_MESSAGE = "A MedDRA code is exactly 8 digits (for example 10022086)."
validate_meddra_code = RegexValidator(re.compile(MEDDRA_CODE_PATTERN), MEDDRA_CODE_MESSAGE, code="invalid_meddra_code")
