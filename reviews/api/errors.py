"""The API's error shape, ``{"error": ..., "details": [...]}``, for every failure."""

from ninja import Schema


class ApiError(Exception):
    """Raised anywhere in an endpoint: answered with ``status`` and the error JSON."""

    def __init__(self, status: int, error: str, details: list[str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = list(details or [])


class ErrorOut(Schema):
    error: str
    details: list[str]


def errors(*codes: int) -> dict[int, type[ErrorOut]]:
    """Response schemas for the error statuses an endpoint may answer (always 401)."""
    return dict.fromkeys(sorted({401, *codes}), ErrorOut)
