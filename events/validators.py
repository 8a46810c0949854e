"""Return whether an adverse event's codes have the shape their dictionaries give them."""

from __future__ import annotations

import re

from django.core.validators import RegexValidator

# A MedDRA code (LLT, PT, HLT, HLGT or SOC) is eight digits; whether it is a current lowest level
# term of the loaded dictionary is events.rules.MEDDRA_NOT_CURRENT (events.services). The CHECK
# constraint ae_meddra_code_shape uses this same pattern: \A and \Z, not ^ and $, because
# Python's $ also matches before a trailing newline and PostgreSQL's does not (both read \A and \Z
# alike). Empty is allowed (the code is optional), so the OpenAPI pattern drf-spectacular derives
# from it describes the stored values truthfully.
MEDDRA_CODE_PATTERN = r"\A(?:[0-9]{8})?\Z"
MEDDRA_CODE_MESSAGE = "A MedDRA code is exactly 8 digits (for example 10022086)."
MEDDRA_CODE_SHAPE = re.compile(MEDDRA_CODE_PATTERN)
validate_meddra_code = RegexValidator(MEDDRA_CODE_SHAPE, MEDDRA_CODE_MESSAGE, code="invalid_meddra_code")
