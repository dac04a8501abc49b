"""What a reviewer does: their queue, the blind grading page and submit-and-next.

The hot path of the app (a few milliseconds a request), so its reads are SQL in ``hot_reads``
and its pull-mode claims in ``pull``; ``services`` holds the blinding (the side-to-system mapping
never leaves it towards a template) and the de-blinded write of a judgment.
"""
