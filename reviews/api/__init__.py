"""The HTTP API for pipelines (``/api/v1/``), its bearer-token auth, and campaign webhooks.

It lives in ``reviews`` because almost every endpoint is a campaign's (create, assign, import
judgments, report, decision, export) and ``reviews`` already depends on ``datasets`` (a campaign
has a dataset), so the one dataset endpoint adds no new direction of import; the tokens
themselves are accounts' business and live in ``evalsite`` (``evalsite.tokens``).

Built on django-ninja rather than Django REST framework: the schema comes from the type hints
the endpoints are written with (pydantic), OpenAPI 3 is built in (DRF needs drf-spectacular for
it), and a ninja endpoint is a plain function, like the pages' views. Speed does not decide it:
measured on one endpoint (``python benchmarks/api_framework.py 1000``: ``GET .../decision``
through the whole stack, interleaved rounds, a shared 2-core machine) the medians were ninja
2.53 ms, DRF 2.48 ms, a plain Django view 2.34 ms in one run and 5.37 / 6.66 / 5.21 ms in the
next: within the machine's noise of each other.
"""
