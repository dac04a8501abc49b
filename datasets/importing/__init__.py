"""A pairs file into a dataset, all or nothing: the lead's upload and preview pages, the job that
runs the import, and the steps it takes in order: ``file_checks`` (bytes), ``parsing`` with
``columns`` and ``row_checks`` (each row), ``stored_checks`` (against what the dataset holds),
``writers`` (into the database), with ``progress`` reported and ``errors`` collected as
``FILE:LINE: message``. ``services.import_pairs`` is what the command, the job and the demo call.
"""
