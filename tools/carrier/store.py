"""Where the carrier sandbox keeps its labels and idempotency keys.

In memory by default (the embedded sandbox lives as long as the ShopBot process). Given a
directory, the store also writes `labels.json` there after every change and reads it back at
start, so `shopbot sandbox carrier --data-dir DIR` keeps its labels across restarts; the file
is replaced atomically and is meant for one sandbox process at a time.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from tools.carrier.contract import Label, LabelRequest, label_path


class IdempotencyRecord(BaseModel):
    """What one idempotency key bought: a fingerprint of the request and the label's id."""

    fingerprint: str
    label_id: str


class IdempotencyMismatch(Exception):
    """The key was used before with a different request body."""


class _Snapshot(BaseModel):
    labels: dict[str, Label] = {}
    keys: dict[str, IdempotencyRecord] = {}


class LabelStore:
    """Labels by id and idempotency records by key, optionally persisted in a directory."""

    FILENAME = "labels.json"

    def __init__(self, directory: Path | None = None) -> None:
        self._file = directory / self.FILENAME if directory is not None else None
        snapshot = _Snapshot()
        if self._file is not None and self._file.exists():
            snapshot = _Snapshot.model_validate_json(self._file.read_bytes())
        self.labels: dict[str, Label] = snapshot.labels
        """Every label issued, by id; tests assert on it."""
        self.keys: dict[str, IdempotencyRecord] = snapshot.keys
        """Every idempotency key seen, by key."""

    def create(self, request: LabelRequest, key: str, now: datetime) -> tuple[Label, bool]:
        """The label for `key`: a new one (True), or the one the key already bought (False).

        Raises `IdempotencyMismatch` when the key was used with a different request. The
        lookup and the insert run without an await between them, so concurrent requests
        with one key on the event loop cannot both buy a label.
        """
        fingerprint = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
        record = self.keys.get(key)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise IdempotencyMismatch(key)
            return self.labels[record.label_id], False
        label_id = f"lbl_{secrets.token_hex(8)}"
        label = Label(
            id=label_id,
            tracking_number=f"PRC{secrets.randbelow(10**12):012d}",
            status="created",
            created_at=now,
            request=request,
            pdf_url=f"{label_path(label_id)}/pdf",
        )
        self.labels[label_id] = label
        self.keys[key] = IdempotencyRecord(fingerprint=fingerprint, label_id=label_id)
        self._save()
        return label, True

    def void(self, label_id: str, now: datetime) -> Label | None:
        """Void a label (voiding twice is a no-op); None if there is no such label."""
        label = self.labels.get(label_id)
        if label is None or label.status == "voided":
            return label
        label = label.model_copy(update={"status": "voided", "voided_at": now})
        self.labels[label_id] = label
        self._save()
        return label

    def clear(self) -> None:
        """Forget every label and key."""
        self.labels.clear()
        self.keys.clear()
        self._save()

    def _save(self) -> None:
        if self._file is None:
            return
        self._file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(_Snapshot(labels=self.labels, keys=self.keys).model_dump_json(indent=1))
        os.replace(tmp, self._file)
