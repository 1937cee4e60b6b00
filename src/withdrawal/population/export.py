"""A FHIR Bulk Data export directory: its files by resource type, and its malformed lines.

The manifest (``manifest.json``, the Bulk Data status response body) is used when present: each
``output`` entry names a type and a URL whose last path segment is looked up in the directory.
Without a manifest every ``*.ndjson`` and ``*.ndjson.gz`` file is taken, its type read from the
first line that parses (falling back to the file-name prefix before the first dot).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from withdrawal.errors import InputError

SUPPORTED_TYPES = ("Patient", "Condition", "MedicationRequest", "MedicationStatement", "AllergyIntolerance",
                   "Observation", "Medication", "Procedure")


@dataclass(frozen=True)
class ExportFile:
    type: str
    path: Path

    @property
    def gzipped(self) -> bool:
        return self.path.name.endswith(".gz")


@dataclass(frozen=True)
class Export:
    root: Path
    files: tuple[ExportFile, ...]
    transaction_time: date | None
    manifest: bool

    def of_type(self, rtype: str) -> tuple[ExportFile, ...]:
        return tuple(f for f in self.files if f.type == rtype)


@dataclass(frozen=True)
class BadLine:
    file: str
    line: int
    error: str


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="\n")
    return path.open("r", encoding="utf-8", errors="replace", newline="\n")


def _sniff_type(path: Path) -> str | None:
    try:
        with _open_text(path) as fh:
            for _, line in zip(range(50), fh, strict=False):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and isinstance(obj.get("resourceType"), str):
                    return str(obj["resourceType"])
    except (OSError, EOFError):
        return None
    return None


def open_export(root: Path) -> Export:
    """Find the resource files of an export directory, with or without a manifest."""
    if not root.is_dir():
        raise InputError("export_dir", "not a directory", value=str(root))
    manifest_path = root / "manifest.json"
    files: list[ExportFile] = []
    tx: date | None = None
    if manifest_path.is_file():
        try:
            doc = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError("manifest.json", f"cannot read: {exc}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("output"), list):
            raise InputError("manifest.json", "no 'output' list")
        tx = _parse_time(doc.get("transactionTime"))
        for i, entry in enumerate(doc["output"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                raise InputError(f"manifest.json: output[{i}]", "needs a url")
            rtype = entry.get("type")
            name = entry["url"].rstrip("/").rsplit("/", 1)[-1]
            path = root / name
            if not path.is_file():
                raise InputError(f"manifest.json: output[{i}].url", "file not in the export directory", value=name)
            if rtype in SUPPORTED_TYPES:
                files.append(ExportFile(str(rtype), path))
    else:
        for path in sorted([*root.glob("*.ndjson"), *root.glob("*.ndjson.gz")]):
            rtype = _sniff_type(path) or path.name.split(".", 1)[0]
            if rtype in SUPPORTED_TYPES:
                files.append(ExportFile(rtype, path))
    if not any(f.type == "Patient" for f in files):
        raise InputError("export_dir", "no Patient NDJSON file found", value=str(root))
    return Export(root=root, files=tuple(files), transaction_time=tx, manifest=manifest_path.is_file())


def _parse_time(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def check_line(text: str, rtype: str) -> str | None:
    """Why one NDJSON line cannot be used as a ``rtype`` resource, or None when it can.

    Blank lines are allowed (and skipped by every reader)."""
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    if not isinstance(obj, dict):
        return "not a JSON object"
    if obj.get("resourceType") != rtype:
        return f"resourceType is {obj.get('resourceType')!r}, expected {rtype!r}"
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        return "no id"
    return None


def check_lines(lines: Iterable[tuple[int, str]], rtype: str, name: str) -> Iterator[BadLine]:
    """Bad lines among numbered lines (1-based), in order."""
    for number, text in lines:
        error = check_line(text.rstrip("\r\n"), rtype)
        if error is not None:
            yield BadLine(name, number, error)


def locate_bad_lines(f: ExportFile) -> list[BadLine]:
    """Scan one local file line by line (only run on files an engine found rejected rows in)."""
    with _open_text(f.path) as fh:
        return list(check_lines(enumerate(fh, start=1), f.type, f.path.name))
