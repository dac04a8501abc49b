from pathlib import Path

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from datasets.importing.columns import Limits
from datasets.importing.errors import ErrorList
from datasets.importing.file_checks import check_chunks, check_header, read_header
from datasets.importing.spreadsheets import SUFFIXES as SPREADSHEET_SUFFIXES
from datasets.importing.spreadsheets import check_workbook

ACCEPTED_SUFFIXES = (".csv", ".jsonl", ".ndjson", *SPREADSHEET_SUFFIXES)


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Pairs file",
        help_text="CSV (with a header row; comma, semicolon or tab separated), JSONL (one JSON "
        "object per line), UTF-8; or an Excel workbook (.xlsx, its first sheet).",
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(ACCEPTED_SUFFIXES)}),
    )
    dataset = forms.CharField(
        label="Dataset",
        max_length=200,
        help_text="An existing dataset's name adds the file's rows to it; a new name creates one.",
        widget=forms.TextInput(attrs={"list": "dataset-names", "autocomplete": "off"}),
    )
    redact_pii = forms.BooleanField(
        label="Redact personal data",
        required=False,
        help_text="Replace e-mail addresses, phone numbers, card numbers and IBANs with "
        "[EMAIL], [PHONE], [CARD] and [IBAN] before anything is stored.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        suffix = Path(upload.name).suffix.lower()
        if suffix not in ACCEPTED_SUFFIXES:
            raise forms.ValidationError("Upload a .csv, .jsonl or .xlsx file.")
        if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
            limit = filesizeformat(settings.IMPORT_MAX_UPLOAD_BYTES)
            raise forms.ValidationError(f"The file is larger than {limit}.")
        if upload.size == 0:
            raise forms.ValidationError("The file is empty.")
        # Archives, binary files, other encodings and files past the limits (a million columns)
        # are refused here, before anything is saved.
        errors, limits = ErrorList(Path(upload.name).name), Limits.from_settings()
        if suffix in SPREADSHEET_SUFFIXES:
            check_workbook(upload.file, errors, limits=limits)
        elif check_chunks(upload.chunks(), errors, max_line_bytes=limits.line_bytes):
            upload.seek(0)
            header = read_header(upload.file, max_bytes=limits.line_bytes)
            kind = "csv" if suffix == ".csv" else "jsonl"
            check_header(header, kind=kind, errors=errors, limits=limits)
        upload.seek(0)
        if errors:
            raise forms.ValidationError(errors.as_list())
        return upload

    def clean_dataset(self):
        name = self.cleaned_data["dataset"].strip()
        if not name:
            raise forms.ValidationError("Give the dataset a name.")
        return name


class SystemsForm(forms.Form):
    """Which two systems the item browser shows side by side."""

    a = forms.ChoiceField(label="Left", required=False)
    b = forms.ChoiceField(label="Right", required=False)

    def __init__(self, *args, systems: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(name, name) for name in systems]
        self.fields["a"].choices = choices
        self.fields["b"].choices = choices
