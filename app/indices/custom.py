"""Custom indices over the local price store: define, store, and read history, composition,
rebalance changes and downloads.

The index itself is computed by :mod:`app.indices.engine` (its docstring explains the price and
share basis); definitions live in :mod:`app.indices.repository`, MCAP share counts in
:mod:`app.indices.shares` and the file formats in :mod:`app.indices.export`.

Access: creating, changing and deleting need a logged-in user; an index belongs to the user who
created it, and only that user or an admin may change or delete it (403). A private index (the
default) does not exist for anyone else: 404 in every view and absent from the list. Each user
may own at most ``quota_per_user`` indices (CUSTOM_INDEX_QUOTA_PER_USER; admins are exempt);
the store as a whole holds at most ``MAX_DEFINITIONS``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict

import numpy as np

from app.auth.service import Principal
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound, UnknownTicker
from app.indices import custom_schemas as s
from app.indices.engine import IndexComputation, compute_index
from app.indices.events import basis_events
from app.indices.export import CSV_MEDIA, XLSX_MEDIA, history_csv, workbook
from app.indices.repository import IndexRepository, Owner, StoredIndex, name_taken
from app.indices.service import from_fields
from app.indices.shares import SharesBook
from app.market.store import PriceStore
from app.market.universe import Universe

#: Also importable from here: the container builds the service from these, and
#: ``scripts/index_evidence.py`` runs the engine directly.
__all__ = ["CustomIndexService", "IndexRepository", "SharesBook", "compute_index"]

#: How many definitions the store keeps, and how many computed histories stay in memory.
MAX_DEFINITIONS = 200
MAX_CACHED = 16
#: How many indices a (non-admin) user may own unless configured otherwise.
DEFAULT_QUOTA_PER_USER = 20


class QuotaExceeded(Conflict):
    """The user already owns as many custom indices as a user may."""

    code = "quota_exceeded"


class CustomIndexService:
    """Define, store and compute custom indices over the local store.

    Computed histories are kept in a small LRU (``MAX_CACHED``) so memory stays bounded
    however many indices are defined; the number of definitions is capped too.
    """

    def __init__(
        self,
        repo: IndexRepository,
        store: PriceStore,
        universe: Universe,
        book: SharesBook,
        *,
        quota_per_user: int = DEFAULT_QUOTA_PER_USER,
    ) -> None:
        self.repo = repo
        self.store = store
        self.universe = universe
        self.book = book
        self.quota_per_user = quota_per_user
        # (name, as_of) -> ((definition, data version, as_of), computation)
        self._cache: OrderedDict[
            tuple[str, dt.date | None], tuple[tuple[str, int, dt.date | None], IndexComputation]
        ] = OrderedDict()
        self._lock = threading.Lock()

    # --- definitions -----------------------------------------------------------------------
    def create(self, body: s.CustomIndexCreate, user: Principal) -> s.CustomIndexInfo:
        """Validate, compute once (so an infeasible rule is refused now) and store as the
        user's."""
        if self.repo.exists(body.name):
            raise name_taken(body.name)
        if not user.is_admin:
            owned = self.repo.count_owned(user.user_id)
            if owned >= self.quota_per_user:
                raise QuotaExceeded(
                    f"You already own {owned} custom indices, the quota per user "
                    f"(CUSTOM_INDEX_QUOTA_PER_USER={self.quota_per_user}); delete one first.",
                    details={"quota": self.quota_per_user, "owned": owned},
                )
        if self.repo.count() >= MAX_DEFINITIONS:
            raise Conflict(
                f"The store already holds {MAX_DEFINITIONS} custom indices; delete one first.",
                details={"max_definitions": MAX_DEFINITIONS},
            )
        definition = self._normalise(body)
        computed = compute_index(definition, self.store, self.book)
        created_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        stored = StoredIndex(definition, created_at, Owner(user.user_id, user.username))
        self.repo.insert(stored)
        self._remember(definition, computed)
        return self._info(stored, computed)

    def list_all(self, user: Principal | None = None) -> s.CustomIndexList:
        """Every stored definition the caller may see (public ones, their own; admins: all)."""
        items = [
            from_fields(
                s.CustomIndexSummary,
                x.definition,
                n_symbols=len(x.definition.universe),
                owner=_owner_name(x),
                created_at=x.created_at,
            )
            for x in self.repo.all()
            if _may_read(x, user)
        ]
        return s.CustomIndexList(total=len(items), items=items)

    def get(
        self, name: str, user: Principal | None = None, variant: s.Variant = "price"
    ) -> s.CustomIndexInfo:
        """A definition with its latest level (of ``variant``)."""
        stored = self._stored(name, user)
        return self._info(stored, self._compute(stored.definition), variant)

    def update(self, name: str, change: s.CustomIndexUpdate, user: Principal) -> s.CustomIndexInfo:
        """Change the description and/or visibility (owner or admin only)."""
        stored = self._writable(name, user)
        fields = change.model_dump(exclude_unset=True)
        if fields.get("visibility") is None:
            fields.pop("visibility", None)
        definition = stored.definition.model_copy(update=fields)
        changed = StoredIndex(definition, stored.created_at, stored.owner)
        if not self.repo.update(changed):
            raise _not_found(name)
        return self._info(changed, self._compute(definition))

    def delete(self, name: str, user: Principal) -> None:
        """Delete a definition (owner or admin only; 404 when unknown)."""
        self._writable(name, user)
        if not self.repo.delete(name):
            raise _not_found(name)
        with self._lock:
            for key in [k for k in self._cache if k[0] == name]:
                del self._cache[key]

    # --- views -------------------------------------------------------------------------------
    def history(
        self,
        name: str,
        start: dt.date | None,
        end: dt.date | None,
        user: Principal | None = None,
        variant: s.Variant = "price",
        as_of: dt.date | None = None,
    ) -> s.IndexHistoryResponse:
        """Levels, returns, divisor and events between two dates (of ``variant``); with
        ``as_of``, computed from the closes up to that date only (``end`` defaults to it)."""
        c, lo, hi = self._between(name, start, end, user, as_of=as_of)
        h = c.variant(variant)
        divisors = c.history.divisors
        counts = [int(seg.members.sum()) for seg in c.segments]
        rows = [
            s.HistoryRow(
                date=c.dates[t],
                level=float(h.levels[t]),
                daily_return=None if t == 0 else float(h.returns[t]),
                cumulative_return=float(h.cumulative_returns[t]),
                divisor=float(divisors[t]),
                n_members=counts[int(c.segment_of_row[t])],
            )
            for t in range(lo, hi + 1)
        ]
        events = [e for e in _events(c) if lo <= e[0] <= hi]
        return s.IndexHistoryResponse(
            name=name,
            variant=variant,
            start=c.dates[lo],
            end=c.dates[hi],
            base_date=c.dates[0],
            base_value=c.definition.base_value,
            period_return=float(h.levels[hi] / h.levels[lo] - 1.0),
            rows=rows,
            events=[e[1] for e in events],
            notes=c.notes_for(variant),
        )

    def composition(
        self,
        name: str,
        day: dt.date | None,
        user: Principal | None = None,
        variant: s.Variant = "price",
    ) -> s.CompositionResponse:
        """Members, weights, capping factors, shares and traded prices on a date."""
        c = self._compute(self._stored(name, user).definition)
        t = len(c.dates) - 1 if day is None else c.row_on_or_before(day)
        k = int(c.segment_of_row[t])
        seg = c.segments[k]
        price = c.prices[t]
        values = np.where(seg.members, seg.units * np.nan_to_num(price), 0.0)
        weights = values / values.sum()
        ref_values = np.where(seg.members, seg.units * np.nan_to_num(c.prices[seg.ref]), 0.0)
        targets = ref_values / ref_values.sum()
        items: list[s.CompositionItem] = []
        cap_weighted = c.definition.weighting != "equal"
        for j in np.flatnonzero(seg.members).tolist():
            sym = c.symbols[j]
            company = self.universe.get(sym)
            items.append(
                s.CompositionItem(
                    symbol=sym,
                    company=company.company if company else None,
                    sector=company.sector if company else None,
                    weight=float(weights[j]),
                    target_weight=float(targets[j]),
                    capping_factor=float(seg.capping_factors[j]),
                    iwf=float(seg.iwf[j]),
                    shares=float(seg.effective_shares[j] / c.basis.split_factor(t, j))
                    if cap_weighted
                    else None,
                    effective_shares=float(seg.effective_shares[j]) if cap_weighted else None,
                    price=c.traded_price(t, j),
                    price_date=c.dates[int(c.last_row[t, j])],
                    market_cap_cr=float(seg.effective_shares[j] * price[j] / 1e7)
                    if cap_weighted
                    else None,
                )
            )
        items.sort(key=lambda x: -x.weight)
        notes = c.notes_for(variant)
        if not cap_weighted:
            notes.append("Equal weight: shares and market caps are not used (reported as null).")
        return s.CompositionResponse(
            name=name,
            variant=variant,
            date=c.dates[t],
            level=float(c.variant(variant).levels[t]),
            divisor=float(c.history.divisors[t]),
            last_rebalance=c.dates[seg.start] if k > 0 else None,
            n_members=len(items),
            constituents=items,
            notes=notes,
        )

    def changes(
        self, name: str, start: dt.date | None, end: dt.date | None, user: Principal | None = None
    ) -> s.ChangesResponse:
        """Adds, drops and weight changes of the rebalances effective between two dates."""
        c, lo, hi = self._between(name, start, end, user)
        out: list[s.RebalanceChange] = []
        for k in range(1, len(c.segments)):
            old, new = c.segments[k - 1], c.segments[k]
            if not lo <= new.start <= hi:
                continue
            p = np.nan_to_num(c.prices[new.ref])
            before = np.where(old.members, old.units * p, 0.0)
            after = np.where(new.members, new.units * p, 0.0)
            wb, wa = before / before.sum(), after / after.sum()
            touched = np.flatnonzero(old.members | new.members)
            weights = [
                s.WeightChange(
                    symbol=c.symbols[j],
                    weight_before=float(wb[j]),
                    weight_after=float(wa[j]),
                    change=float(wa[j] - wb[j]),
                )
                for j in touched
            ]
            weights.sort(key=lambda x: -abs(x.change))
            out.append(
                s.RebalanceChange(
                    date=c.dates[new.start],
                    reference_date=c.dates[new.ref],
                    added=[c.symbols[j] for j in np.flatnonzero(new.members & ~old.members)],
                    dropped=[c.symbols[j] for j in np.flatnonzero(old.members & ~new.members)],
                    divisor_before=float(c.history.divisors[new.start - 1]),
                    divisor_after=float(c.history.divisors[new.start]),
                    turnover=float(np.abs(wa - wb).sum() / 2.0),
                    weights=weights,
                )
            )
        return s.ChangesResponse(name=name, start=c.dates[lo], end=c.dates[hi], rebalances=out)

    def export(
        self, name: str, fmt: str, user: Principal | None = None, variant: s.Variant = "price"
    ) -> tuple[bytes, str, str]:
        """The history as CSV, or history + composition + definition as an xlsx workbook; the
        file name says the variant (``<name>-price.csv``, ``<name>-total_return.xlsx``)."""
        stored = self._stored(name, user)
        hist = self.history(name, None, None, user, variant)
        if fmt == "csv":
            return history_csv(hist), CSV_MEDIA, f"{name}-{variant}.csv"
        composition = self.composition(name, None, user, variant)
        return workbook(stored, hist, composition), XLSX_MEDIA, f"{name}-{variant}.xlsx"

    # --- internals -----------------------------------------------------------------------------
    def _stored(self, name: str, user: Principal | None) -> StoredIndex:
        """The index if the caller may read it; 404 when it is unknown or someone's private."""
        stored = self.repo.get(name)
        if stored is None or not _may_read(stored, user):
            raise _not_found(name)
        return stored

    def _writable(self, name: str, user: Principal) -> StoredIndex:
        """The index if the caller may change it: 404 as in :meth:`_stored`, 403 when they may
        read it but are neither its owner nor an admin."""
        stored = self._stored(name, user)
        if not _may_change(stored, user):
            raise Forbidden(
                f"Only the owner of the custom index {name!r} or an admin may change or delete it.",
                details={"name": name},
            )
        return stored

    def _between(
        self,
        name: str,
        start: dt.date | None,
        end: dt.date | None,
        user: Principal | None,
        *,
        as_of: dt.date | None = None,
    ) -> tuple[IndexComputation, int, int]:
        """The computed index ``name`` (as ``user`` may see it, from the data up to ``as_of``)
        and its first and last rows between ``start`` and ``end``."""
        definition = self._stored(name, user).definition
        if as_of is not None:
            if end is not None and end > as_of:
                raise InvalidInput(
                    f"end ({end}) is after as_of ({as_of}): the data of {as_of} ends there.",
                    details={"end": end.isoformat(), "as_of": as_of.isoformat()},
                )
            if as_of < definition.base_date:
                raise InvalidInput(
                    f"as_of ({as_of}) is before the index's base date ({definition.base_date}).",
                    details={"as_of": as_of.isoformat()},
                )
        c = self._compute(definition, as_of=as_of)
        lo, hi = _window(c, start, end)
        return c, lo, hi

    def _compute(
        self, definition: s.CustomIndexCreate, *, as_of: dt.date | None = None
    ) -> IndexComputation:
        key = (definition.model_dump_json(), self.store.serving_version(), as_of)
        with self._lock:
            hit = self._cache.get((definition.name, as_of))
            if hit is not None and hit[0] == key:
                self._cache.move_to_end((definition.name, as_of))
                return hit[1]
        computed = compute_index(definition, self.store, self.book, end=as_of)
        self._remember(definition, computed, as_of=as_of)
        return computed

    def _remember(
        self,
        definition: s.CustomIndexCreate,
        computed: IndexComputation,
        *,
        as_of: dt.date | None = None,
    ) -> None:
        key = (definition.model_dump_json(), self.store.serving_version(), as_of)
        with self._lock:
            self._cache[(definition.name, as_of)] = (key, computed)
            self._cache.move_to_end((definition.name, as_of))
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)

    def _info(
        self, stored: StoredIndex, c: IndexComputation, variant: s.Variant = "price"
    ) -> s.CustomIndexInfo:
        last = len(c.dates) - 1
        return from_fields(
            s.CustomIndexInfo,
            stored.definition,
            effective_base_date=c.dates[0],
            owner=_owner_name(stored),
            created_at=stored.created_at,
            variant=variant,
            last_date=c.dates[last],
            last_level=float(c.variant(variant).levels[last]),
            n_members=int(c.segments[int(c.segment_of_row[last])].members.sum()),
            notes=c.notes_for(variant),
        )

    def _normalise(self, body: s.CustomIndexCreate) -> s.CustomIndexCreate:
        """Resolve symbols against the universe and check the definition is computable."""
        symbols, unknown = self._resolve(body.universe)
        dupes = sorted({x for x in symbols if symbols.count(x) > 1})
        if dupes:
            raise InvalidInput(
                f"universe lists {', '.join(dupes)} more than once", details={"duplicates": dupes}
            )
        iwf: dict[str, float] | None = None
        if body.iwf:
            if body.weighting != "free_float":
                raise InvalidInput(
                    "iwf applies to weighting=free_float only",
                    details={"weighting": body.weighting},
                )
            keys, unknown_iwf = self._resolve(list(body.iwf))
            unknown.update(unknown_iwf)
            iwf = {k: body.iwf[raw] for k, raw in zip(keys, body.iwf, strict=True) if k}
            outside = sorted(k for k in iwf if k not in symbols)
            if outside:
                raise InvalidInput(
                    f"iwf given for symbols outside the universe: {', '.join(outside)}",
                    details={"symbols": outside},
                )
        if unknown:
            raise InvalidInput(
                f"Not in the Nifty 500 universe: {', '.join(sorted(unknown))}",
                details={"unknown": unknown},
            )
        if body.capping is not None and body.weighting == "equal":
            raise InvalidInput(
                "capping applies to cap-weighted indices: equal weights are already the "
                "flattest possible (drop capping or use free_float / full_market_cap)"
            )
        coverage = self.store.last_dates(symbols)
        no_prices = sorted(x for x in symbols if x not in coverage)
        if no_prices:
            raise InvalidInput(
                f"No stored prices for {', '.join(no_prices)}", details={"symbols": no_prices}
            )
        if body.weighting != "equal":
            no_shares = sorted(x for x in symbols if not self.book.has(x))
            if no_shares:
                raise InvalidInput(
                    f"No NSE MCAP shares for {', '.join(no_shares)}: use weighting=equal or "
                    "drop them",
                    details={"symbols": no_shares},
                )
        last = max(coverage.values())
        if body.base_date > last:
            raise InvalidInput(
                f"base_date {body.base_date} is after the last stored close {last}",
                details={"last_date": last.isoformat()},
            )
        return body.model_copy(update={"universe": symbols, "iwf": iwf})

    def _resolve(self, raw: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        out: list[str] = []
        unknown: dict[str, list[str]] = {}
        for item in raw:
            try:
                out.append(self.universe.resolve(item).symbol)
            except UnknownTicker as exc:
                unknown[item] = list(exc.details.get("suggestions", []))
                out.append("")
        return out, unknown


def _window(c: IndexComputation, start: dt.date | None, end: dt.date | None) -> tuple[int, int]:
    if start is not None and end is not None and start > end:
        raise InvalidInput(
            f"start {start} is after end {end}",
            details={"start": start.isoformat(), "end": end.isoformat()},
        )
    lo = 0 if start is None else int(np.searchsorted(c.ordinals, start.toordinal(), side="left"))
    hi = len(c.dates) - 1 if end is None else c.row_on_or_before(end)
    if lo > hi:
        raise InvalidInput(
            "no trading day of the index between start and end",
            details={"first_date": c.dates[0].isoformat(), "last_date": c.dates[-1].isoformat()},
        )
    return lo, hi


def _events(c: IndexComputation) -> list[tuple[int, s.IndexEvent]]:
    h = c.history
    out: list[tuple[int, s.IndexEvent]] = []
    for k in range(1, len(c.segments)):
        old, new = c.segments[k - 1], c.segments[k]
        t = new.start
        added = [c.symbols[j] for j in np.flatnonzero(new.members & ~old.members)]
        dropped = [c.symbols[j] for j in np.flatnonzero(old.members & ~new.members)]
        d0, d1 = float(h.divisors[t - 1]), float(h.divisors[t])
        out.append(
            (
                t,
                s.IndexEvent(
                    date=c.dates[t],
                    reference_date=c.dates[new.ref],
                    kind="rebalance",
                    divisor_before=d0,
                    divisor_after=d1,
                    added=added,
                    dropped=dropped,
                    detail=(
                        f"{c.definition.rebalance} rebalance valued at the closes of "
                        f"{c.dates[new.ref]}: {int(new.members.sum())} members, "
                        f"divisor x {d1 / d0:.6f}"
                    ),
                ),
            )
        )
    out.extend(basis_events(c))
    out.sort(key=lambda e: (e[0], e[1].kind))
    return out


def _may_change(stored: StoredIndex, user: Principal | None) -> bool:
    """Admins change any index, users their own; an ownerless (legacy) index is admins' only."""
    if user is None:
        return False
    return user.is_admin or (stored.owner is not None and stored.owner.id == user.user_id)


def _may_read(stored: StoredIndex, user: Principal | None) -> bool:
    """Anyone reads a public index; a private one only its owner and admins."""
    return stored.visibility == "public" or _may_change(stored, user)


def _owner_name(stored: StoredIndex) -> str | None:
    return None if stored.owner is None else stored.owner.username


def _not_found(name: str) -> NotFound:
    return NotFound(
        f"No custom index named {name!r}; GET /indices lists the defined ones.",
        details={"name": name},
    )
