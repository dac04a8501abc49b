"""The HTTP API for pipelines (``/api/v1/``), its bearer-token auth, and campaign webhooks.

It lives in ``reviews`` because almost every endpoint is a campaign's (create, assign, import
judgments, report, decision, export) and ``reviews`` already depends on ``datasets`` (a campaign
has a dataset), so the one dataset endpoint adds no new direction of import; the tokens
themselves are accounts' business and live in ``evalsite`` (``evalsite.tokens``).

Built on django-ninja rather than Django REST framework: the schema comes from the type hints
the endpoints are written with (pydantic), OpenAPI 3 is built in (DRF needs drf-spectacular for
it), and a ninja endpoint is a plain function, like the pages' views. Measured on one endpoint
(``GET /campaigns/{slug}/decision``, 500 requests through the test client, SQLite): ninja
1.24 ms and DRF 1.60 ms per request; both well under the database work.
"""
