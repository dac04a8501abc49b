"""Import errors as ``FILE:LINE: column: message`` strings, collected and capped."""

from django.core.exceptions import ValidationError

MAX_ERRORS = 200


class ImportFailed(ValidationError):
    """The file cannot be imported; ``errors`` are ``FILE:LINE: column: message`` strings."""

    def __init__(self, errors: list[str]):
        super().__init__(errors)
        self.errors = list(errors)


class ErrorList:
    """Collects ``FILE:LINE: column: message`` errors; keeps the first MAX_ERRORS."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.items: list[tuple[int, int, str]] = []
        self.count = 0

    def add(self, line: int | None, message: str, column: str | None = None) -> None:
        self.count += 1
        if len(self.items) < MAX_ERRORS:
            where = self.filename if line is None else f"{self.filename}:{line}"
            text = f"{where}: {column}: {message}" if column else f"{where}: {message}"
            self.items.append((line or 0, self.count, text))

    def __bool__(self) -> bool:
        return self.count > 0

    def as_list(self) -> list[str]:
        more = self.count - len(self.items)
        tail = [f"{self.filename}: … and {more} more errors"] if more > 0 else []
        return [text for _line, _n, text in sorted(self.items)] + tail
