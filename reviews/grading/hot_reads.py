"""The grading requests' reads, in SQL, built into model instances.

The grading page and submit-and-next have a budget of 15 ms of server time (issue #5). Through
the ORM, reading the reviewer's assignment with its item, and the campaign with its systems and
rubric, cost ~3 ms of CPU per request, nearly all of it compiling the queries; the same reads
in SQL cost ~1 ms (measured with benchmarks/grading_server_time.py). Values go through each
field's database converters exactly as the ORM applies them, so the instances are the same.
"""

from functools import cache

from django.db import connection
from django.db.models import Model

from datasets.models import Item, System
from reviews.models import Assignment, Campaign, CampaignItem, Rubric


@cache
def _shape(model: type[Model], alias: str, vendor: str) -> tuple[str, tuple, tuple]:
    """(SELECT list for `alias`, attnames, converters per column) of a model's concrete fields."""
    fields = model._meta.concrete_fields
    columns = ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in fields)
    converters = []
    for field in fields:
        col = field.get_col(alias)
        found = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        converters.append(tuple((convert, col) for convert in found))
    return columns, tuple(f.attname for f in fields), tuple(converters)


def _select(*parts: tuple[type[Model], str]) -> str:
    return ", ".join(_shape(model, alias, connection.vendor)[0] for model, alias in parts)


def _build(row: tuple, parts: tuple[tuple[type[Model], str], ...]) -> list[Model]:
    """Cut a row into one instance per (model, alias), converting values as the ORM would."""
    out, start = [], 0
    for model, alias in parts:
        _, attnames, converters = _shape(model, alias, connection.vendor)
        values = list(row[start : start + len(attnames)])
        start += len(attnames)
        for i, column_converters in enumerate(converters):
            for convert, col in column_converters:
                values[i] = convert(values[i], col, connection)
        out.append(model.from_db(connection.alias, attnames, values))
    return out


_ASSIGNMENT = ((Assignment, "a"), (CampaignItem, "ci"), (Item, "i"))
_CAMPAIGN = ((Campaign, "c"), (System, "b"), (System, "s"), (Rubric, "r"))


# A reviewer paused in the assignment's campaign (failed its gold check, not reinstated).
_PAUSED = (
    "EXISTS (SELECT 1 FROM reviews_reviewerpause p WHERE p.campaign_id = a.campaign_id"
    " AND p.reviewer_id = a.reviewer_id AND p.reinstated_at IS NULL)"
)


def _assignment(where: str, params: list, order: str = "") -> Assignment | None:
    sql = (
        f"SELECT {_select(*_ASSIGNMENT)}, {_PAUSED}, rb.text, rc.text"  # noqa: S608 - fixed SQL
        " FROM reviews_assignment a"
        " JOIN reviews_campaignitem ci ON ci.id = a.campaign_item_id"
        " JOIN datasets_item i ON i.id = a.item_id"
        " JOIN datasets_response rb ON rb.id = ci.baseline_response_id"
        " JOIN datasets_response rc ON rc.id = ci.candidate_response_id"
        f" WHERE {where}{order} LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    assignment, campaign_item, item = _build(row[:-3], _ASSIGNMENT)
    assignment.campaign_item, assignment.item = campaign_item, item
    assignment.reviewer_paused = bool(row[-3])
    # The two responses' texts, for grading.blind_pair (saves it a query).
    assignment.pair_texts = {"baseline": row[-2], "candidate": row[-1]}
    return assignment


def assignment_by_token(*, token: str, reviewer_id: int) -> Assignment | None:
    """The reviewer's assignment with its campaign item, item and the two responses' texts
    (not its campaign)."""
    return _assignment("a.token = %s AND a.reviewer_id = %s", [token, reviewer_id])


_NEXT_PENDING = (
    "a.campaign_id = %s AND a.reviewer_id = %s AND a.status = %s AND EXISTS"  # noqa: S608 - fixed SQL
    " (SELECT 1 FROM reviews_campaign c WHERE c.id = a.campaign_id AND c.status = %s)"
    " AND NOT " + _PAUSED
)


def next_pending(*, campaign_id: int, reviewer_id: int) -> Assignment | None:
    """The reviewer's first pending assignment in an active campaign, in queue order (none
    while the reviewer is paused there)."""
    return _assignment(
        _NEXT_PENDING,
        [campaign_id, reviewer_id, Assignment.Status.PENDING, Campaign.Status.ACTIVE],
        order=" ORDER BY a.position, a.id",
    )


def campaign_with_systems(campaign_id: int) -> Campaign:
    """The campaign with its baseline, candidate and rubric (DoesNotExist if there is none)."""
    sql = (
        f"SELECT {_select(*_CAMPAIGN)} FROM reviews_campaign c"  # noqa: S608 - fixed SQL
        " JOIN datasets_system b ON b.id = c.baseline_id"
        " JOIN datasets_system s ON s.id = c.candidate_id"
        " JOIN reviews_rubric r ON r.id = c.rubric_id"
        " WHERE c.id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign_id])
        row = cursor.fetchone()
    if row is None:
        raise Campaign.DoesNotExist(f"No campaign {campaign_id}")
    campaign, baseline, candidate, rubric = _build(row, _CAMPAIGN)
    campaign.baseline, campaign.candidate, campaign.rubric = baseline, candidate, rubric
    return campaign
