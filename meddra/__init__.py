"""MedDRA dictionary versions, loaded from licensed MSSO ASCII releases (none ship with the registry)."""
