"""PostgreSQL fast path of the judgments export: the server builds every CSV line (and every tidy
line) exactly as ``writing.csv_lines`` would write it, and ``COPY … TO STDOUT`` streams them.

Measured with benchmarks/export.py on a shared 2-core machine: 1,000,000 judgments in 21-27 s,
the first row after 0.1 s (the Python path: ~100 s, decoding rows, JSON and datetimes one by
one), the process's peak RSS 65 MB at 100,000 and at 1,000,000 rows. Everything the Python
path does is done here in SQL: de-blinding, system names, score and meta cells by JSON type,
``defuse``, the csv module's minimal quoting and ``\\r\\n``. Reviewer names (an HMAC for
pseudonyms) are computed in Python, once per reviewer, and looked up from a constant JSON
object. JSON lines are built here too, as ``writing.jsonl_lines`` writes them. A CSV or JSONL
export whose metadata holds decimals inside objects or arrays goes the Python way (see
``metadata_keys``).

Rows stream in the current judgments' index order (campaign, id) through nested loops of index
lookups: the first row leaves at once, and no built line is sorted (issue #20).
"""

import json
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from psycopg import sql

from reviews.exports import writing
from reviews.models import Campaign

# Lines are read one COPY message each; they are handed on in pieces of about this size.
PIECE_BYTES = 256 * 1024
# COPY's text format escapes these (backslash and control characters) inside a row.
_UNESCAPE = [(b"\\n", b"\n"), (b"\\r", b"\r"), (b"\\t", b"\t"), (b"\\b", b"\b"),
             (b"\\f", b"\f"), (b"\\v", b"\v")]  # fmt: skip
# A JSON object or array whose text holds a decimal number: json.dumps would print the number
# as a Python float (4.50 -> 4.5), PostgreSQL as written, so such metadata goes the Python way.
_NESTED_DECIMAL = r"[0-9]\.[0-9]"


def usable(kind: str) -> bool:
    """Whether this path can write ``kind`` on the current database."""
    return connection.vendor == "postgresql" and kind in ("csv", "tidy", "jsonl")


# The settings of the export's transaction, read or set in its first statement.
_SETTINGS = (
    "current_setting('extra_float_digits')::int > 0,"
    # JIT spent ~4 s compiling the export's long expressions on 1,000,000 rows for no faster a
    # query (measured); off for this transaction, here to spare a statement.
    " set_config('jit', 'off', true),"
    # Stream in the judgments' index order: nested loops of index lookups keep that order, so
    # the first row leaves at once and nothing is sorted. Costed for the whole result, the
    # planner hash-joins everything and sorts every built line by id (1,000,000 rows: 20 s
    # before the first row, issue #20). This transaction only.
    " set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),"
    " set_config('enable_sort', 'off', true)"
)


def metadata_keys(campaign: Campaign) -> tuple[list[str], list[str], bool, bool]:
    """The campaign items' sorted metadata keys, their responses' (one set for both sides),
    whether this path writes their values exactly as Python does (no decimals inside a nested
    object or array) and whether it writes floats so (shortest exact, as repr():
    extra_float_digits above 0, PostgreSQL's default).

    The keys are read from every item's and response's metadata in one pass, before the first
    row of a campaign's first export only (33,334 items of benchmarks/export.py: 0.31-0.37 s,
    against 0.09-0.14 s for the item keys alone; 1.3 s was measured for 333,334 items' keys
    alone), and kept on the campaign: imported items and responses never change. A cache from
    before response keys were kept is worked out again."""
    known = campaign.export_metadata
    with connection.cursor() as cursor:
        if known is not None and "response_keys" in known:
            cursor.execute("SELECT " + _SETTINGS)
            exact_floats = cursor.fetchone()[0]
            return known["keys"], known["response_keys"], known["exact"], exact_floats
        # Read and kept in one statement (the download's query count is pinned).
        cursor.execute(
            "WITH keys AS (SELECT m.owner, m.key,"  # noqa: S608
            " bool_or(jsonb_typeof(m.value) IN ('object', 'array') AND m.value::text ~ %s)"
            " AS awkward"
            " FROM reviews_campaignitem ci JOIN datasets_item i ON i.id = ci.item_id"
            " JOIN datasets_response b ON b.id = ci.baseline_response_id"
            " JOIN datasets_response c ON c.id = ci.candidate_response_id"
            # Each metadata's (owner, key, value) rows; none for a non-object.
            " CROSS JOIN LATERAL (SELECT 'item' AS owner, e.key, e.value FROM jsonb_each(CASE"
            " WHEN jsonb_typeof(i.metadata) = 'object' THEN i.metadata END) e"
            " UNION ALL SELECT 'response', e.key, e.value FROM jsonb_each(CASE"
            " WHEN jsonb_typeof(b.metadata) = 'object' THEN b.metadata END) e"
            " UNION ALL SELECT 'response', e.key, e.value FROM jsonb_each(CASE"
            " WHEN jsonb_typeof(c.metadata) = 'object' THEN c.metadata END) e) m"
            " WHERE ci.campaign_id = %s GROUP BY m.owner, m.key),"
            ' found AS (SELECT coalesce(array_agg(key ORDER BY key COLLATE "C")'
            " FILTER (WHERE owner = 'item'), '{}') AS keys,"
            ' coalesce(array_agg(key ORDER BY key COLLATE "C")'
            " FILTER (WHERE owner = 'response'), '{}') AS response_keys,"
            " NOT coalesce(bool_or(awkward), false) AS exact FROM keys),"
            " kept AS (UPDATE reviews_campaign SET export_metadata = jsonb_build_object("
            "'keys', to_jsonb(found.keys), 'response_keys', to_jsonb(found.response_keys),"
            " 'exact', found.exact) FROM found WHERE id = %s RETURNING 1)"
            " SELECT found.keys, found.response_keys, found.exact, " + _SETTINGS + ","
            " (SELECT count(*) FROM kept) FROM found",
            [_NESTED_DECIMAL, campaign.pk, campaign.pk],
        )
        keys, response_keys, exact_meta, exact_floats = cursor.fetchone()[:4]
    keys, response_keys = sorted(keys), sorted(response_keys)
    campaign.export_metadata = {"keys": keys, "response_keys": response_keys, "exact": exact_meta}
    return keys, response_keys, exact_meta, exact_floats


# Up to this many accounts, the reviewer cells are worked out for every account (one short
# query); a campaign's distinct reviewers took 0.5 s to find among 1,000,000 judgments.
ALL_ACCOUNTS_UP_TO = 5000


def reviewer_labels(campaign: Campaign, *, pseudonymise: bool) -> dict[int, str]:
    """{user id: name in the export} for at least everyone with a judgment in the campaign."""
    User = get_user_model()
    accounts = list(
        User.objects.order_by("pk").values_list("pk", "email", "username")[: ALL_ACCOUNTS_UP_TO + 1]
    )
    if len(accounts) > ALL_ACCOUNTS_UP_TO:
        return writing.reviewer_labels(campaign, pseudonymise=pseudonymise)
    return {
        pk: writing.reviewer_pseudonym(pk) if pseudonymise else (email or username)
        for pk, email, username in accounts
    }


def export_pieces(
    campaign: Campaign, *, kind: str, filters: dict[str, Any], pseudonymise: bool
) -> Iterator[tuple[str, int]] | None:
    """(text, rows) pieces of the CSV or tidy export, header first (no row), or None on a
    database or for a kind this path does not write. Where it cannot match the Python path
    byte for byte (see ``metadata_keys``), the pieces come from that path."""
    if not usable(kind):
        return None
    return _pieces(campaign, kind, filters, pseudonymise)


def _pieces(
    campaign: Campaign, kind: str, filters: dict[str, Any], pseudonymise: bool
) -> Iterator[tuple[str, int]]:
    # One snapshot for the metadata keys, the reviewer names and the rows (when this is the
    # outermost transaction, as in a download or the command): every row's reviewer is named.
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as wrapper:
        if outermost:
            wrapper.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        meta_keys, response_keys, exact_meta, exact_floats = metadata_keys(campaign)
        if not exact_floats or (kind in ("csv", "jsonl") and not exact_meta):
            yield from writing.python_pieces(
                campaign, kind=kind, filters=filters, pseudonymise=pseudonymise
            )
            return
        labels = reviewer_labels(campaign, pseudonymise=pseudonymise)
        if kind == "jsonl":  # no header line; the keys are in every line
            query = _jsonl_query(campaign, filters, labels, meta_keys, response_keys)
            yield from _copy_pieces(wrapper.cursor, query, crlf=False)
            return
        if kind == "csv":
            header = writing.export_columns(campaign, meta_keys, response_keys)
            query = _csv_query(campaign, filters, labels, meta_keys, response_keys)
        else:
            header = writing.TIDY_COLUMNS
            query = _tidy_query(campaign, filters, labels)
        yield _line(header), 0
        yield from _copy_pieces(wrapper.cursor, query)


def _copy_pieces(cursor, query: sql.Composable, *, crlf: bool = True) -> Iterator[tuple[str, int]]:
    # Exiting early (a client that goes away) cancels the COPY; psycopg drains it.
    with cursor.copy(sql.SQL("COPY ({}) TO STDOUT").format(query)) as copy:
        blocks: list = []
        size = 0
        for block in copy:
            blocks.append(block)
            size += len(block)
            if size >= PIECE_BYTES:
                yield _unescape(b"".join(blocks), crlf), len(blocks)
                blocks, size = [], 0
        if blocks:
            yield _unescape(b"".join(blocks), crlf), len(blocks)


def _unescape(data: bytes, crlf: bool = True) -> str:
    """COPY text rows (one line each, ``\\n``-terminated, backslash escapes) as CSV text
    (``\\r\\n`` line ends) or JSON lines (``\\n``)."""
    if crlf:
        data = data.replace(b"\n", b"\r\n")  # every raw newline ends a row
    if b"\\" in data:
        # Each backslash starts a two-byte escape; split on the escaped backslash first.
        parts = data.split(b"\\\\")
        for i, part in enumerate(parts):
            if b"\\" in part:
                for escaped, raw in _UNESCAPE:
                    part = part.replace(escaped, raw)
                parts[i] = part
        data = b"\\".join(parts)
    return data.decode()


# ---------------------------------------------------------------------------------------------
# SQL for one cell, as csv.writer writes ``defuse(value)``


def _line(cells: list[Any]) -> str:
    return "".join(writing.csv_lines([cells]))


def _constant(value: Any) -> sql.Literal:
    """A cell worked out in Python (a system's name, the slug)."""
    return sql.Literal(_line([value, ""])[: -len(",\r\n")])


def _text(expr: sql.Composable) -> sql.Composed:
    """A text cell: ``'`` before a formula, quoted when it holds , " CR or LF; NULL is empty."""
    defused = sql.SQL(
        "CASE WHEN left({x}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || {x}"
        " ELSE {x} END"
    ).format(x=expr)
    return sql.SQL(
        "coalesce(CASE WHEN strpos({x}, ',') > 0 OR strpos({x}, '\"') > 0"
        " OR strpos({x}, E'\\n') > 0 OR strpos({x}, E'\\r') > 0"
        " THEN '\"' || replace({d}, '\"', '\"\"') || '\"' ELSE {d} END, '')"
    ).format(x=expr, d=defused)


_CSV_SPECIALS = ("''", "'nan'", "'inf'", "'-inf'")
# json.dumps writes None and the non-finite floats so (allow_nan, its default).
_JSON_SPECIALS = ("'null'", "'NaN'", "'Infinity'", "'-Infinity'")


def _float(expr: sql.Composable, specials: tuple[str, ...] = _CSV_SPECIALS) -> sql.Composed:
    """A float8 as Python's repr(): 20.0 not 20, 1e+16 from 1e16 up (PostgreSQL from 1e15).
    ``specials``: what None, nan, inf and -inf are written as."""
    null, nan, inf, minus_inf = (sql.SQL(special) for special in specials)
    return sql.SQL(
        "CASE WHEN {f} IS NULL THEN {null}"
        " WHEN {f} = trunc({f}) AND abs({f}) < 1e16"
        "  THEN CASE WHEN {f} = 0 AND {f}::text = '-0' THEN '-0.0'"
        "   ELSE ({f}::bigint)::text || '.0' END"
        " WHEN {f} = 'NaN' THEN {nan} WHEN {f} = 'Infinity' THEN {inf}"
        " WHEN {f} = '-Infinity' THEN {minus_inf}"
        " WHEN {f}::text LIKE '%e+15'"
        "  THEN left(replace(split_part({f}::text, 'e', 1), '.', ''), 16) || '.'"
        "   || substr(replace(split_part({f}::text, 'e', 1), '.', ''), 17)"
        " ELSE {f}::text END"
    ).format(f=expr, null=null, nan=nan, inf=inf, minus_inf=minus_inf)


def _json(
    text: sql.Composable,
    value: sql.Composable,
    string: sql.Composable | None = None,
    number: sql.Composable | None = None,
) -> sql.Composed:
    """A JSON value as Python writes what json.loads made of it: a string as text, an integer
    as is, a decimal as a float, true/false as True/False, null or nothing as empty, an object
    or array as its JSON text (json.dumps of the metadata; the app stores no such scores).
    ``text`` is the value's JSON text; ``string`` and ``number`` its text unquoted and its
    float8, when worked out already."""
    string = string or sql.SQL("({} #>> '{{}}')").format(value)
    number = number or sql.SQL("({}::float8)").format(text)
    return sql.SQL(
        "CASE WHEN {t} IS NULL THEN '' ELSE CASE left({t}, 1)"
        " WHEN '\"' THEN {string} WHEN 't' THEN 'True' WHEN 'f' THEN 'False' WHEN 'n' THEN ''"
        " WHEN '{{' THEN {json} WHEN '[' THEN {json}"
        " ELSE CASE WHEN strpos({t}, '.') = 0 THEN {t} ELSE {float} END END END"
    ).format(t=text, string=_text(string), json=_text(text), float=_float(number))


def _values_once(values: list[sql.Composable]) -> tuple[sql.Composed, list[sql.Composed]]:
    """(a LATERAL relation v, the cells): each JSON value's text, unquoted text and float
    worked out once per row. Inline, the cell's CASE branches read each of them up to a dozen
    times (1,000,000 rows: 7 JSON cells cost ~16 s of the export's ~35 s, measured)."""
    if not values:
        return sql.SQL(""), []
    columns, cells = [], []
    for n, value in enumerate(values):
        t, u, f = (sql.Identifier(f"{kind}{n}") for kind in ("t", "u", "f"))
        columns.append(
            sql.SQL(
                "{v}::text AS {t}, {v} #>> '{{}}' AS {u},"
                " CASE WHEN jsonb_typeof({v}) = 'number' THEN {v}::text::float8 END AS {f}"
            ).format(v=value, t=t, u=u, f=f)
        )
        cells.append(
            _json(sql.SQL("v.{}").format(t), value, sql.SQL("v.{}").format(u),
                  sql.SQL("v.{}").format(f))
        )  # fmt: skip
    # OFFSET 0 keeps the subquery from being folded back into the cells' expressions.
    lateral = sql.SQL(" CROSS JOIN LATERAL (SELECT {} OFFSET 0) v").format(
        sql.SQL(", ").join(columns)
    )
    return lateral, cells


def _timestamp(expr: sql.Composable) -> sql.Composed:
    """datetime.isoformat() of an aware UTC datetime: microseconds only when there are any."""
    utc = sql.SQL("({} AT TIME ZONE 'UTC')").format(expr)
    return sql.SQL(
        "CASE WHEN {x} IS NULL THEN ''"
        " WHEN date_trunc('second', {u}) = {u}"
        "  THEN to_char({u}, 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00')"
        " ELSE to_char({u}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US+00:00') END"
    ).format(x=expr, u=utc)


def _score_value(criterion: str, target: str) -> sql.Composed:
    """``(scores.get(criterion) or {}).get(target)`` as JSON (``->`` of a non-object is NULL)."""
    return sql.SQL("(j.scores -> {} -> {})").format(sql.Literal(criterion), sql.Literal(target))


def _meta_value(key: str, alias: str = "i") -> sql.Composed:
    return sql.SQL("({}.metadata -> {})").format(sql.Identifier(alias), sql.Literal(key))


def _all_meta_values(meta_keys: list[str], response_keys: list[str]) -> list[sql.Composed]:
    """The item's, then the baseline's, then the candidate's metadata values, column order."""
    return [
        *(_meta_value(key) for key in meta_keys),
        *(_meta_value(key, "b") for key in response_keys),
        *(_meta_value(key, "c") for key in response_keys),
    ]


def _cells(values: list[sql.Composable]) -> list[sql.Composed]:
    # Inline, not a LATERAL computed once per row: PostgreSQL then works out the cells in its
    # parallel workers (1,000,000 rows: 14 s against 19 s, measured).
    return [_json(sql.SQL("({}::text)").format(value), value) for value in values]


# ---------------------------------------------------------------------------------------------
# The queries


def _judgments(campaign: Campaign, filters: dict[str, Any]) -> sql.Composed:
    """The WHERE clause of the campaign's current judgments under ``filters``. The filters are
    the ORM's own (``writing.current_judgments``), so both paths select the same rows."""
    where = sql.SQL("j.campaign_id = {} AND j.is_current").format(sql.Literal(campaign.pk))
    narrowed = ("reviewer", "submitted_from", "submitted_to", "metadata")
    if filters.get("batch") is None and not any(filters.get(name) for name in narrowed):
        return where
    ids = writing.current_judgments(campaign, filters).order_by().values("pk")
    try:
        chosen = connection.ops.compose_sql(*ids.query.sql_with_params())
    except EmptyResultSet:  # e.g. a reviewer with no judgments here
        return sql.SQL("false")
    return sql.SQL("{} AND j.id IN ({})").format(where, sql.SQL(chosen))


def _reviewer_cell(labels: dict[int, str]) -> sql.Composed:
    """The reviewer's cell, looked up by id in a constant JSON object (parsed once per query; a
    binary search per row, where a join would take a hash table or a scan per row)."""
    cells = {str(pk): _line([label, ""])[: -len(",\r\n")] for pk, label in labels.items()}
    return sql.SQL("coalesce({}::jsonb ->> j.reviewer_id::text, '')").format(
        sql.Literal(json.dumps(cells))
    )


def _csv_query(
    campaign: Campaign,
    filters: dict[str, Any],
    labels: dict[int, str],
    meta_keys: list[str],
    response_keys: list[str],
) -> sql.Composed:
    baseline, candidate = campaign.baseline.name, campaign.candidate.name
    columns = writing.score_columns(campaign.rubric.criteria)
    scores = [_score_value(name, target) for _, name, target in columns]
    metas = _all_meta_values(meta_keys, response_keys)
    lateral, json_cells = _values_once(scores + metas)
    cells = [
        _constant(campaign.slug),
        _text(sql.SQL("i.external_id")),
        _reviewer_cell(labels),
        _text(sql.SQL("j.preference")),
        sql.SQL("CASE j.preference WHEN 'baseline' THEN {} WHEN 'candidate' THEN {} ELSE '' END")
        .format(_constant(baseline), _constant(candidate)),
        sql.SQL("CASE WHEN j.candidate_left THEN {} ELSE {} END")
        .format(_constant(candidate), _constant(baseline)),
        _constant(baseline),
        _constant(candidate),
        _text(sql.SQL("i.prompt")),
        _text(sql.SQL("b.text")),
        _text(sql.SQL("c.text")),
        *json_cells[: len(scores)],
        _text(sql.SQL("j.rationale")),
        _timestamp(sql.SQL("j.started_at")),
        _timestamp(sql.SQL("j.submitted_at")),
        _float(sql.SQL("j.duration_seconds")),
        *json_cells[len(scores):],
    ]  # fmt: skip
    return sql.SQL(
        "SELECT concat_ws(',', {cells}) FROM reviews_judgment j"
        " JOIN datasets_item i ON i.id = j.item_id"
        " JOIN reviews_campaignitem ci ON ci.campaign_id = j.campaign_id AND ci.item_id = j.item_id"
        " JOIN datasets_response b ON b.id = ci.baseline_response_id"
        " JOIN datasets_response c ON c.id = ci.candidate_response_id{lateral}"
        " WHERE {where} ORDER BY j.id"
    ).format(cells=sql.SQL(", ").join(cells), lateral=lateral, where=_judgments(campaign, filters))


def _tidy_query(
    campaign: Campaign, filters: dict[str, Any], labels: dict[int, str]
) -> sql.Composed:
    columns = writing.score_columns(campaign.rubric.criteria)
    if not columns:
        return sql.SQL("SELECT '' WHERE false")
    scores = [_score_value(name, target) for _, name, target in columns]
    pairs = sql.SQL(", ").join(
        sql.SQL("({}, {}, {})").format(sql.Literal(n), _constant(name), _constant(target))
        for n, (_, name, target) in enumerate(columns)
    )
    value = sql.SQL("CASE t.n {} END").format(
        sql.SQL(" ").join(
            sql.SQL("WHEN {} THEN {}").format(sql.Literal(n), cell)
            for n, cell in enumerate(_cells(scores))
        )
    )
    # Python writes a row for each value that is not None: JSON null or no value at all.
    present = sql.SQL("CASE t.n {} END").format(
        sql.SQL(" ").join(
            sql.SQL("WHEN {} THEN coalesce({}::text, 'null') <> 'null'").format(
                sql.Literal(n), value
            )
            for n, value in enumerate(scores)
        )
    )
    return sql.SQL(
        "SELECT concat_ws(',', {slug}, {item}, {reviewer}, t.criterion, t.target,"
        " {value}) FROM reviews_judgment j"
        " JOIN datasets_item i ON i.id = j.item_id"
        " CROSS JOIN (VALUES {pairs}) t(n, criterion, target)"
        " WHERE {where} AND {present} ORDER BY j.id, t.n"
    ).format(
        slug=_constant(campaign.slug),
        item=_text(sql.SQL("i.external_id")),
        value=value,
        reviewer=_reviewer_cell(labels),
        pairs=pairs,
        where=_judgments(campaign, filters),
        present=present,
    )


# ---------------------------------------------------------------------------------------------
# JSON lines, as ``writing.jsonl_lines`` writes them: json.dumps(ensure_ascii=False) of each row
# keyed by the CSV header. PostgreSQL's to_json escapes a string exactly as json.dumps does
# (the quote, the backslash, \b \f \n \r \t, other control characters as \u00xx).


def _js_text(expr: sql.Composable) -> sql.Composed:
    return sql.SQL("coalesce(to_json({})::text, 'null')").format(expr)


def _js_constant(value: Any) -> sql.Literal:
    return sql.Literal(json.dumps(value, ensure_ascii=False))


def _js_value(
    text: sql.Composable, *, objects_as_text: bool, number: sql.Composable | None = None
) -> sql.Composed:
    """A JSON value as json.dumps writes what json.loads made of it: strings, integers, true,
    false and null as PostgreSQL writes them, a decimal as a float's repr; an object or array
    as its JSON text, or (metadata: ``writing._cell``) as a string holding that text."""
    nested = _js_text(text) if objects_as_text else text
    return sql.SQL(
        "CASE WHEN {t} IS NULL THEN 'null' ELSE CASE left({t}, 1)"
        " WHEN '{{' THEN {nested} WHEN '[' THEN {nested}"
        " WHEN '\"' THEN {t} WHEN 't' THEN {t} WHEN 'f' THEN {t} WHEN 'n' THEN {t}"
        " ELSE CASE WHEN strpos({t}, '.') = 0 THEN {t} ELSE {float} END END END"
    ).format(
        t=text,
        nested=nested,
        float=_float(number or sql.SQL("({}::float8)").format(text), _JSON_SPECIALS),
    )


def _js_timestamp(expr: sql.Composable) -> sql.Composed:
    return sql.SQL("CASE WHEN {x} IS NULL THEN 'null' ELSE '\"' || {iso} || '\"' END").format(
        x=expr, iso=_timestamp(expr)
    )


def _jsonl_query(
    campaign: Campaign,
    filters: dict[str, Any],
    labels: dict[int, str],
    meta_keys: list[str],
    response_keys: list[str],
) -> sql.Composed:
    baseline, candidate = campaign.baseline.name, campaign.candidate.name
    columns = writing.score_columns(campaign.rubric.criteria)
    names = {str(pk): json.dumps(label, ensure_ascii=False) for pk, label in labels.items()}
    scores = [_score_value(name, target) for _, name, target in columns]
    metas = _all_meta_values(meta_keys, response_keys)
    lateral, _ = _values_once(scores + metas)
    # The values' JSON text and float, worked out once per row (see _values_once).
    once = [
        {"text": sql.SQL("v.{}").format(sql.Identifier(f"t{n}")),
         "number": sql.SQL("v.{}").format(sql.Identifier(f"f{n}"))}
        for n in range(len(scores) + len(metas))
    ]  # fmt: skip
    values = [
        _js_constant(campaign.slug),
        _js_text(sql.SQL("i.external_id")),
        sql.SQL("coalesce({}::jsonb ->> j.reviewer_id::text, 'null')").format(
            sql.Literal(json.dumps(names))
        ),
        _js_text(sql.SQL("j.preference")),
        sql.SQL("CASE j.preference WHEN 'baseline' THEN {} WHEN 'candidate' THEN {}"
                " ELSE 'null' END").format(_js_constant(baseline), _js_constant(candidate)),
        sql.SQL("CASE WHEN j.candidate_left THEN {} ELSE {} END")
        .format(_js_constant(candidate), _js_constant(baseline)),
        _js_constant(baseline),
        _js_constant(candidate),
        _js_text(sql.SQL("i.prompt")),
        _js_text(sql.SQL("b.text")),
        _js_text(sql.SQL("c.text")),
        *(_js_value(**cell, objects_as_text=False) for cell in once[: len(scores)]),
        _js_text(sql.SQL("j.rationale")),
        _js_timestamp(sql.SQL("j.started_at")),
        _js_timestamp(sql.SQL("j.submitted_at")),
        _float(sql.SQL("j.duration_seconds"), _JSON_SPECIALS),
        *(_js_value(**cell, objects_as_text=True) for cell in once[len(scores) :]),
    ]  # fmt: skip
    header = writing.export_columns(campaign, meta_keys, response_keys)
    pairs = [
        sql.SQL("{} || {}").format(sql.Literal(json.dumps(key, ensure_ascii=False) + ": "), value)
        for key, value in zip(header, values, strict=True)
    ]
    return sql.SQL(
        "SELECT '{{' || concat_ws(', ', {pairs}) || '}}' FROM reviews_judgment j"
        " JOIN datasets_item i ON i.id = j.item_id"
        " JOIN reviews_campaignitem ci ON ci.campaign_id = j.campaign_id AND ci.item_id = j.item_id"
        " JOIN datasets_response b ON b.id = ci.baseline_response_id"
        " JOIN datasets_response c ON c.id = ci.candidate_response_id{lateral}"
        " WHERE {where} ORDER BY j.id"
    ).format(pairs=sql.SQL(", ").join(pairs), lateral=lateral, where=_judgments(campaign, filters))
