"""The data-entry screen's wiring across apps: a procedure's page lists its adverse events too.

registry/ cannot know events/ (it is the layer below), so the procedure admin gains the events
inline here, in the layer above both.
"""

from __future__ import annotations

from django.contrib import admin

from events.admin_inlines import AdverseEventInline
from registry.admin import ProcedureAdmin
from registry.models import Procedure


class ProcedureWithEventsAdmin(ProcedureAdmin):
    inlines = (*ProcedureAdmin.inlines, AdverseEventInline)


admin.site.unregister(Procedure)
admin.site.register(Procedure, ProcedureWithEventsAdmin)
