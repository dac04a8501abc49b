"""Request bodies that are files (a pairs file, a judgments CSV): read in chunks into a
temporary file, never whole into memory, and refused past the upload limit before most of an
oversized body has been read."""

import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from reviews.api.errors import ApiError

CHUNK = 1024 * 1024


def media_type(request) -> str:
    return request.content_type.split(";")[0].strip().lower()


@contextmanager
def body_file(request, *, filename: str, accepted: dict[str, str]):
    """The request body as a file named ``filename`` with the extension its media type implies
    (``accepted``: media type → extension), in a directory removed afterwards."""
    kind = media_type(request)
    if kind not in accepted:
        raise ApiError(
            415,
            f"Send the file as {' or '.join(accepted)} (the request said {kind or 'nothing'}).",
        )
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    too_big = f"The body is larger than the upload limit of {filesizeformat(limit)}."
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise ApiError(413, too_big)
    # The name is the caller's (a query parameter): keep only what is safe in a file name, so
    # a NUL byte or a path separator becomes a plain character instead of an OSError.
    stem = re.sub(r"[^\w.-]+", "_", Path(filename).stem)[:100].strip("._") or "upload"
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"{stem}{accepted[kind]}"
        size = 0
        with path.open("wb") as out:
            while chunk := request.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, too_big)
                out.write(chunk)
        if size == 0:
            raise ApiError(400, f"{path.name}: the body is empty; send the file as the body.")
        yield path
