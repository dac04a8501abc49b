"""Labelled data in and out: the judgments export (CSV, JSONL, tidy) and the judgments import.

``services`` picks the export path and logs it; ``sql`` builds the lines inside PostgreSQL with
COPY; ``writing`` writes the same bytes row by row in Python. Judgments gathered elsewhere come
in through ``judgment_import``, reading the export's own format back.
"""
