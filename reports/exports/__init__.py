"""Exports for registry administrators and clinics: line listing (CSV), FHIR R4 Bundle, overdue visits.

Every export reads through the selectors (the user's clinics only), streams its rows
with flat memory and writes an export-log entry before the first byte and its row
count after the last. URLs: reports.exports.urls (under /api/v1/exports/); admin: admin.py.
"""
