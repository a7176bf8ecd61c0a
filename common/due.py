"""Due work held in rows (DESIGN.md §4.2): the one mechanism every app uses to claim it.

Work to do is a row with a status, a due time, a lease and an attempt count: inbox events, shipments,
notification deliveries, KYC status checks, onboarding polls. A `DueWork` describes where a model keeps
those, and gives every app the same four steps:

- `due_ids()`: the rows a sweeper should nudge — waiting rows whose due time has come, and busy rows whose
  lease ran out (their worker died: the caller reconciles before acting again);
- `lock()`: inside the caller's transaction, lock one row with `SKIP LOCKED` and say whether it may be
  claimed now (and whether that claim takes over an expired lease);
- `mark()`: the claim itself — busy, attempts + 1, a lease — saved with the lock still held; the caller
  then commits before it calls anything outside the database;
- `record()`: write the outcome, fenced: only if the row is still busy with this claim's attempt number
  (a worker whose lease ran out and was taken over writes nothing).

`claim()` is `lock()` + `mark()` in one transaction for models with no checks of their own in between.
A model with a protected FSM status marks its own way (e.g. `Shipment.start_sending()`) and keeps the rest.
`sweep()` nudges every due row's task; the broker is only a nudge, the rows are the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

DEFAULT_LEASE = timedelta(minutes=5)


def backoff(attempts: int, *, base: timedelta = timedelta(minutes=1), cap: timedelta = timedelta(hours=1)) -> timedelta:
    """base, 2·base, 4·base … after the 1st, 2nd, 3rd … attempt, at most `cap`."""
    return min(cap, base * (2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Claim:
    """A locked row and how it became claimable."""

    row: Any
    reclaimed: bool  # True: the row was busy and its lease had run out (a worker died mid-attempt)


@dataclass(frozen=True)
class DueWork:
    model: type[models.Model]
    waiting: tuple[str, ...]          # statuses that wait for their due time
    busy: str                         # status while a worker holds the row
    due_field: str = "due_at"
    lease_field: str = "lease_until"  # when the busy row's lease ends
    attempts_field: str = "attempts"
    status_field: str = "status"
    lease: timedelta = DEFAULT_LEASE

    # --- reading ------------------------------------------------------------------------------------
    def waiting_q(self, now: datetime) -> Q:
        return Q(**{f"{self.status_field}__in": self.waiting, f"{self.due_field}__lte": now})

    def expired_q(self, now: datetime) -> Q:
        return Q(**{self.status_field: self.busy, f"{self.lease_field}__lte": now})

    def due_q(self, now: datetime) -> Q:
        return self.waiting_q(now) | self.expired_q(now)

    def due_ids(self, *, now: datetime | None = None, limit: int = 500) -> list:
        now = now or timezone.now()
        return list(self.model.objects.filter(self.due_q(now)).order_by(self.due_field, "pk")
                    .values_list("pk", flat=True)[:limit])

    def is_claimable(self, row, now: datetime) -> Claim | None:
        status = getattr(row, self.status_field)
        if status == self.busy:
            lease_end = getattr(row, self.lease_field)
            return Claim(row, True) if lease_end is None or lease_end <= now else None
        due = getattr(row, self.due_field)
        if status in self.waiting and (due is None or due <= now):
            return Claim(row, False)
        return None

    # --- claiming -----------------------------------------------------------------------------------
    def lock(self, pk, *, now: datetime | None = None, queryset=None) -> Claim | None:
        """Lock one row (SKIP LOCKED) in the caller's transaction; None when another worker holds it, it
        is gone, or it is not due. `queryset` may add select_related (only this model's row is locked)."""
        from .locks import lock_one

        now = now or timezone.now()
        row = lock_one(queryset if queryset is not None else self.model.objects.all(), pk=pk, skip_locked=True)
        if row is None:
            return None
        return self.is_claimable(row, now)

    def mark(self, row, *, now: datetime | None = None, update_fields: tuple[str, ...] = ()) -> None:
        """Busy, one more attempt, leased until now + lease; saved (the lock is still held)."""
        now = now or timezone.now()
        setattr(row, self.status_field, self.busy)
        setattr(row, self.attempts_field, getattr(row, self.attempts_field) + 1)
        setattr(row, self.lease_field, now + self.lease)
        fields = {self.status_field, self.attempts_field, self.lease_field, *update_fields}
        if any(f.name == "updated_at" for f in self.model._meta.concrete_fields):
            fields.add("updated_at")
        row.save(update_fields=sorted(fields))

    def claim(self, pk, *, now: datetime | None = None, force: bool = False) -> Claim | None:
        """Lock + mark in one committed transaction. `force` claims a row that is not due or is finished
        (operator replay), but never one that another worker holds."""
        from .locks import lock_one

        now = now or timezone.now()
        with transaction.atomic():
            if not force:
                claim = self.lock(pk, now=now)
            else:
                row = lock_one(self.model.objects.all(), pk=pk, skip_locked=True)
                claim = None if row is None else self.is_claimable(row, now)
                if row is not None and claim is None and getattr(row, self.status_field) != self.busy:
                    claim = Claim(row, False)
            if claim is None:
                return None
            self.mark(claim.row, now=now)
        return claim

    def record(self, row, **fields) -> bool:
        """Store an attempt's outcome unless the row moved on (its lease was taken over). The lease field is
        cleared unless given."""
        fields.setdefault(self.lease_field, None)
        if any(f.name == "updated_at" for f in self.model._meta.concrete_fields):
            fields.setdefault("updated_at", timezone.now())
        changed = self.model.objects.filter(**{
            "pk": row.pk, self.status_field: self.busy, self.attempts_field: getattr(row, self.attempts_field),
        }).update(**fields)
        return bool(changed)

    # --- sweeping -----------------------------------------------------------------------------------
    def sweep(self, task, *, now: datetime | None = None, limit: int = 500) -> int:
        """Nudge `task(pk)` for every due row (beat, every minute)."""
        from .inbox import nudge

        ids = self.due_ids(now=now, limit=limit)
        for pk in ids:
            nudge(task, pk)
        return len(ids)
