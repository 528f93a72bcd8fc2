"""Neural building blocks of the SoVITS v2 generator (official parameter names, inference only)."""
