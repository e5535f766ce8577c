"""Reports: one model built from a results folder, rendered to self-contained HTML and to PDF."""
