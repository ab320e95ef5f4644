"""Weight capping rules and capping factors (DOMAIN.md section 4).

Every rule takes uncapped weights (or free-float market caps: any positive scale, any order)
and returns a :class:`CappingResult` with the capped weights, the capping factors CF_i usable
in the index formula of section 2, and which names were bound by a constraint.

Rules
-----
``cap_single_stock``  every weight <= c (iterative proportional redistribution).
``cap_by_rank``       the k-th largest weight <= caps[k] (NSE 19/14/10 for Nifty Bank).
``cap_top_n``         single <= c and the N largest together <= T (SEBI 20/45 and 25/65,
                      NSE sectoral 33/62).
``cap_10_40``         MSCI 10/40 (UCITS): each <= 10 %, the names above 5 % together <= 40 %,
                      optionally with the 9 / 4.5 / 36 % buffers.

Conventions
-----------
* Weights are normalised to sum to 1 first; names are ranked by uncapped weight, ties broken
  by position (stable). Every rule preserves that order (ties allowed).
* Names not bound by any constraint keep their mutual ratios: all of them are scaled by one
  common factor.
* A feasible input that already meets the rule is returned unchanged (normalised).
* Tolerance: a weight may exceed a cap by at most ``tol`` (default 1e-12).
* A rule no weights can satisfy raises :class:`~app.analytics.exceptions.InfeasibleRuleError`
  with the reason.
* Capping factors: ``CF_i = w_capped_i / w_uncapped_i``, rescaled so that ``max CF = 1``;
  then ``P * Q * IWF * CF`` reproduces the capped weights.

NaN policy: weights must be finite and > 0 (drop names with no market cap before calling).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.analytics._arrays import BoolArray, FloatArray
from app.analytics._checks import is_integer
from app.analytics.exceptions import InfeasibleRuleError

__all__ = [
    "CappingResult",
    "cap_10_40",
    "cap_by_rank",
    "cap_single_stock",
    "cap_top_n",
    "capping_factors",
]

DEFAULT_TOL = 1e-12


@dataclass(frozen=True)
class CappingResult:
    """Capped weights and capping factors.

    Attributes
    ----------
    weights : ndarray, shape (n,)
        Capped weights in the input order, summing to 1.
    capping_factors : ndarray, shape (n,)
        ``CF_i`` in (0, 1] relative to the uncapped weights / free-float market caps,
        ``max CF = 1``.
    capped : ndarray of bool, shape (n,)
        True for names whose weight is set by a constraint (at a cap, in a group scaled to a
        cumulative cap, or held at a level to keep the order). The other names share one
        common scale factor, so their ratios equal the uncapped ratios.
    binding : tuple of str
        Constraints that had to be enforced: ``"single"``, ``"rank"``, ``"top_n"``,
        ``"group"``; empty when the input already complied.
    iterations : int
        Redistribution passes used (0 when the input already complied).
    rule : str
        Human-readable rule, e.g. ``"single<=0.2, top3<=0.45"``.
    """

    weights: FloatArray
    capping_factors: FloatArray
    capped: BoolArray
    binding: tuple[str, ...]
    iterations: int
    rule: str


# --------------------------------------------------------------------------- helpers


def _fraction(name: str, value: float) -> float:
    """``value`` as a float; ValueError unless it is in (0, 1]."""
    out = float(value)
    if not (math.isfinite(out) and 0.0 < out <= 1.0):
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return out


def _tol(tol: float) -> float:
    """``tol`` as a float; ValueError unless it is in [0, 1e-6)."""
    out = float(tol)
    if not (math.isfinite(out) and 0.0 <= out < 1e-6):
        raise ValueError(f"tol must be in [0, 1e-6), got {tol!r}")
    return out


def _prepare(weights: ArrayLike) -> tuple[FloatArray, FloatArray, NDArray[np.intp]]:
    """Validate; return normalised weights, the same sorted descending, and the sort order."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"weights must be a non-empty 1-D array (n,), got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite (NaN/inf refused)")
    if np.any(w <= 0.0):
        raise ValueError("weights must be > 0 (drop names with no market cap first)")
    u = w / w.sum()
    order = np.argsort(-u, kind="stable")
    return u, u[order], order


def capping_factors(uncapped: ArrayLike, capped: ArrayLike) -> FloatArray:
    """Capping factors that turn uncapped weights (or market caps) into capped weights.

    Parameters
    ----------
    uncapped : array_like, shape (n,)
        Uncapped weights or free-float market caps, > 0.
    capped : array_like, shape (n,)
        Target weights, >= 0.

    Returns
    -------
    ndarray, shape (n,)
        ``CF_i`` with ``max CF = 1``.

    Notes
    -----
    ``CF_i = (c_i / u_i) / max_j (c_j / u_j)``; the weights implied by ``u_i * CF_i`` are
    proportional to ``c_i``.
    """
    u = np.asarray(uncapped, dtype=np.float64)
    c = np.asarray(capped, dtype=np.float64)
    if u.ndim != 1 or u.size == 0:
        raise ValueError(f"uncapped must be a non-empty 1-D array, got shape {u.shape}")
    if c.shape != u.shape:
        raise ValueError(f"capped must have the shape of uncapped {u.shape}, got {c.shape}")
    if not (np.all(np.isfinite(u)) and np.all(u > 0.0)):
        raise ValueError("uncapped must be finite and > 0")
    if not (np.all(np.isfinite(c)) and np.all(c >= 0.0)) or c.sum() <= 0.0:
        raise ValueError("capped must be finite, >= 0 and not all zero")
    ratio = c / u
    return np.asarray(ratio / ratio.max(), dtype=np.float64)


def _water_fill(
    u: FloatArray, caps: FloatArray, total: float, tol: float
) -> tuple[FloatArray, BoolArray, int]:
    """Iterative proportional redistribution with per-name upper caps.

    Names above their cap are set to it; the excess goes to the names below their cap in
    proportion to their weights; repeat until nothing breaches by more than ``tol``. The
    capped set only grows, so this ends in at most ``n`` passes. Caller checks
    ``sum(caps) >= total``.
    """
    at_cap = np.zeros(u.size, dtype=np.bool_)
    iterations = 0
    while True:
        iterations += 1
        free = ~at_cap
        if free.any():
            scale = (total - float(caps[at_cap].sum())) / float(u[free].sum())
            w = np.where(at_cap, caps, u * scale)
        else:
            w = caps.copy()
        breach = free & (w > caps + tol)
        if not breach.any():
            return w, at_cap, iterations
        at_cap |= breach


def _box_fill(u: FloatArray, total: float, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Solve ``sum(clip(f * u, lo, hi)) = total`` for f >= 0 exactly; return the clipped weights.

    ``g(f) = sum clip(f u_i, lo_i, hi_i)`` is continuous, piecewise linear and non-decreasing,
    with breakpoints at ``lo_i / u_i`` and ``hi_i / u_i``; find the segment holding ``total``
    and solve the linear equation on it. Caller checks ``sum(lo) <= total <= sum(hi)``.
    """
    points = np.unique(np.concatenate(([0.0], lo / u, hi / u)))
    g = np.clip(np.outer(points, u), lo, hi).sum(axis=1)
    k = min(int(np.searchsorted(g, total, side="left")), points.size - 1)
    if k == 0:
        return lo.copy()
    mid = 0.5 * (points[k - 1] + points[k]) * u
    free = (mid > lo) & (mid < hi)
    fixed = float(np.clip(mid, lo, hi)[~free].sum())
    f = (total - fixed) / float(u[free].sum()) if free.any() else points[k]
    return np.asarray(np.clip(f * u, lo, hi), dtype=np.float64)


def _result(
    u: FloatArray,
    order: NDArray[np.intp],
    sorted_weights: FloatArray,
    sorted_capped: BoolArray,
    *,
    binding: tuple[str, ...],
    iterations: int,
    rule: str,
) -> CappingResult:
    w = np.empty_like(u)
    w[order] = sorted_weights
    capped = np.empty(u.size, dtype=np.bool_)
    capped[order] = sorted_capped
    return CappingResult(
        weights=w,
        capping_factors=capping_factors(u, w),
        capped=capped,
        binding=binding,
        iterations=iterations,
        rule=rule,
    )


def _split_result(
    u: FloatArray,
    order: NDArray[np.intp],
    top: tuple[FloatArray, BoolArray],
    rest: tuple[FloatArray, BoolArray],
    *,
    group: str,
    iterations: int,
    rule: str,
) -> CappingResult:
    """Result from (weights, at-cap) of the top names, all capped, and of the rest."""
    (top_w, top_at_cap), (rest_w, rest_capped) = top, rest
    ws = np.concatenate((top_w, rest_w))
    capped = np.concatenate((np.ones(top_w.size, dtype=np.bool_), rest_capped))
    binding = ("single", group) if bool(top_at_cap.any()) else (group,)
    return _result(u, order, ws, capped, binding=binding, iterations=iterations, rule=rule)


def _check_capacity(rule: str, n: int, cap: float, tol: float, *, label: str) -> None:
    """InfeasibleRuleError unless ``n`` names at ``cap`` each can reach 100 %."""
    if n * cap < 1.0 - tol:
        raise InfeasibleRuleError(rule, f"{n} names x {label} {cap:g} = {n * cap:g} < 1")


def _unchanged(u: FloatArray, rule: str) -> CappingResult:
    """Result for weights that already meet the rule: no name capped, all factors 1."""
    return CappingResult(
        weights=u,
        capping_factors=np.ones_like(u),
        capped=np.zeros(u.size, dtype=np.bool_),
        binding=(),
        iterations=0,
        rule=rule,
    )


# --------------------------------------------------------------------------- rules


def cap_single_stock(weights: ArrayLike, *, cap: float, tol: float = DEFAULT_TOL) -> CappingResult:
    """Cap every weight at ``cap`` by iterative proportional redistribution.

    Parameters
    ----------
    weights : array_like, shape (n,)
        Uncapped weights or free-float market caps, > 0.
    cap : float
        Single-stock cap c in (0, 1].
    tol : float, default 1e-12
        Allowed excess over the cap.

    Returns
    -------
    CappingResult
        ``binding`` is ``("single",)``, or empty when no weight exceeds the cap.

    Raises
    ------
    InfeasibleRuleError
        When ``n * c < 1``: n names cannot reach 100 % at c each.

    Notes
    -----
    Repeat: set ``w_i = c`` for every breaching name and
    ``w_j = u_j * (1 - c * #capped) / sum_{uncapped} u_k`` for the others, until
    ``max w <= c + tol``. The result is ``w_i = min(c, s * u_i)`` with one scale s.
    """
    c = _fraction("cap", cap)
    tol = _tol(tol)
    rule = f"single<={c:g}"
    u, us, order = _prepare(weights)
    n = u.size
    _check_capacity(rule, n, c, tol, label="cap")
    if us[0] <= c + tol:
        return _unchanged(u, rule)
    ws, at_cap, it = _water_fill(us, np.full(n, c), 1.0, tol)
    return _result(u, order, ws, at_cap, binding=("single",), iterations=it, rule=rule)


def cap_by_rank(
    weights: ArrayLike,
    *,
    rank_caps: Sequence[float],
    rest_cap: float | None = None,
    tol: float = DEFAULT_TOL,
) -> CappingResult:
    """Cap the k-th largest weight at ``rank_caps[k]`` (e.g. NSE 0.19 / 0.14 / 0.10).

    Parameters
    ----------
    weights : array_like, shape (n,)
        Uncapped weights or free-float market caps, > 0.
    rank_caps : sequence of float
        Caps for ranks 1, 2, ... in (0, 1], non-increasing.
    rest_cap : float, optional
        Cap for every rank beyond ``len(rank_caps)``; default the last rank cap, which is
        what keeping the weights in descending order implies anyway.
    tol : float, default 1e-12
        Allowed excess over a cap.

    Returns
    -------
    CappingResult
        ``binding`` is ``("rank",)``, or empty when every rank already meets its cap.

    Raises
    ------
    InfeasibleRuleError
        When the caps of the n ranks add up to less than 1.

    Notes
    -----
    Ranks come from the uncapped weights. Same redistribution as :func:`cap_single_stock`
    with a per-name cap ``c_rank(i)``: ``w_i = min(c_rank(i), s * u_i)``. Because the caps do
    not increase with rank, the order of the weights is preserved.
    """
    caps_list = [_fraction(f"rank_caps[{i}]", c) for i, c in enumerate(rank_caps)]
    if not caps_list:
        raise ValueError("rank_caps must contain at least one cap")
    if any(b > a for a, b in itertools.pairwise(caps_list)):
        raise ValueError(f"rank_caps must be non-increasing, got {caps_list}")
    rest = caps_list[-1] if rest_cap is None else _fraction("rest_cap", rest_cap)
    if rest > caps_list[-1]:
        raise ValueError(f"rest_cap ({rest:g}) must not exceed the last rank cap")
    tol = _tol(tol)
    rule = "rank caps " + "/".join(f"{c:g}" for c in caps_list) + f", rest<={rest:g}"
    u, us, order = _prepare(weights)
    n = u.size
    caps = np.full(n, rest)
    k = min(n, len(caps_list))
    caps[:k] = caps_list[:k]
    capacity = float(caps.sum())
    if capacity < 1.0 - tol:
        raise InfeasibleRuleError(rule, f"the caps of {n} ranks add up to {capacity:g} < 1")
    if np.all(us <= caps + tol):
        return _unchanged(u, rule)
    ws, at_cap, it = _water_fill(us, caps, 1.0, tol)
    return _result(u, order, ws, at_cap, binding=("rank",), iterations=it, rule=rule)


def cap_top_n(
    weights: ArrayLike,
    *,
    single_cap: float,
    top_n: int,
    top_n_cap: float,
    min_constituents: int | None = None,
    tol: float = DEFAULT_TOL,
) -> CappingResult:
    """Single-stock cap plus a cumulative cap on the N largest weights.

    Presets: SEBI 2025 derivatives on non-benchmark indices ``(0.20, 3, 0.45,
    min_constituents=14)``; SEBI 2019 index funds ``(0.25, 3, 0.65, min_constituents=10)``;
    NSE sectoral ``(0.33, 3, 0.62)``.

    Parameters
    ----------
    weights : array_like, shape (n,)
        Uncapped weights or free-float market caps, > 0.
    single_cap : float
        Cap c on any one weight, in (0, 1].
    top_n : int
        N, number of largest names in the cumulative cap (>= 1).
    top_n_cap : float
        Cap T on the sum of the N largest weights, in (0, 1].
    min_constituents : int, optional
        Refuse (InfeasibleRuleError) an index with fewer names.
    tol : float, default 1e-12
        Allowed excess over a cap.

    Returns
    -------
    CappingResult
        ``binding`` is ``("single",)`` when the single cap alone meets the rule, else
        ``("top_n",)`` or ``("single", "top_n")``; empty when the input complies.

    Raises
    ------
    InfeasibleRuleError
        Fewer than ``min_constituents`` names; ``n * c < 1``; ``n <= N`` with ``T < 1``; or
        ``n * min(c, T / N) < 1`` (the names outside the top N cannot exceed the N-th weight).

    Notes
    -----
    1. Apply the single cap (:func:`cap_single_stock`). If the N largest sum to at most T,
       stop.
    2. Otherwise the top N get exactly T, shared in proportion to their uncapped weights with
       the single cap (same redistribution), and the other names share ``1 - T`` in
       proportion to their uncapped weights, each capped at ``l = w_(N)``, the smallest top-N
       weight, so the order is kept.
    3. If the others cannot absorb ``1 - T`` below ``w_(N)`` (``(n - N) * w_(N) < 1 - T``),
       the level is raised to ``l = (1 - T) / (n - N)``: all the others sit at l and the
       top N get ``clip(f * u_i, l, c)`` with f solved so that they sum to T.
    All top-N names are reported as ``capped``; the others are capped when they sit at l.
    """
    c = _fraction("single_cap", single_cap)
    t = _fraction("top_n_cap", top_n_cap)
    if not (is_integer(top_n) and top_n >= 1):
        raise ValueError(f"top_n must be an integer >= 1, got {top_n!r}")
    if min_constituents is not None and not (
        is_integer(min_constituents) and min_constituents >= 1
    ):
        raise ValueError(f"min_constituents must be a positive integer, got {min_constituents!r}")
    big_n = int(top_n)
    tol = _tol(tol)
    rule = f"single<={c:g}, top{big_n}<={t:g}"
    u, us, order = _prepare(weights)
    n = u.size

    if min_constituents is not None and n < min_constituents:
        raise InfeasibleRuleError(rule, f"{n} constituents < minimum {min_constituents}")
    _check_capacity(rule, n, c, tol, label="single cap")
    top_rule_active = big_n * c > t + tol and t < 1.0 - tol
    if top_rule_active:
        if n <= big_n:
            raise InfeasibleRuleError(
                rule, f"with {n} names the top {big_n} always hold 100 % > {t:g}"
            )
        ceiling = min(c, t / big_n)
        if n * ceiling < 1.0 - tol:
            raise InfeasibleRuleError(
                rule,
                f"no name can exceed min(c, T/N) = {ceiling:g} once the top {big_n} are "
                f"capped, and {n} x {ceiling:g} = {n * ceiling:g} < 1",
            )
    if us[0] <= c + tol and float(us[:big_n].sum()) <= t + tol:
        return _unchanged(u, rule)

    v, at_cap, it = _water_fill(us, np.full(n, c), 1.0, tol)
    if not top_rule_active or float(v[:big_n].sum()) <= t + tol:
        return _result(u, order, v, at_cap, binding=("single",), iterations=it, rule=rule)

    top, top_at_cap, it_top = _water_fill(us[:big_n], np.full(big_n, c), t, tol)
    it += it_top
    rest_total = 1.0 - t
    level_min = rest_total / (n - big_n)
    level = float(top[-1])
    if level >= level_min:
        rest, rest_capped, it_rest = _water_fill(
            us[big_n:], np.full(n - big_n, level), rest_total, tol
        )
        it += it_rest
    else:
        level = level_min
        top = _box_fill(us[:big_n], t, np.full(big_n, level), np.full(big_n, c))
        top_at_cap = top >= c
        rest = np.full(n - big_n, level)
        rest_capped = np.ones(n - big_n, dtype=np.bool_)
        it += 1
    return _split_result(
        u, order, (top, top_at_cap), (rest, rest_capped), group="top_n", iterations=it, rule=rule
    )


def cap_10_40(
    weights: ArrayLike,
    *,
    single_cap: float = 0.10,
    group_threshold: float = 0.05,
    group_cap: float = 0.40,
    buffered: bool = False,
    buffer_factor: float = 0.9,
    tol: float = DEFAULT_TOL,
) -> CappingResult:
    """MSCI 10/40 style rule: each weight <= 10 %, the names above 5 % together <= 40 %.

    Parameters
    ----------
    weights : array_like, shape (n,)
        Uncapped weights (one per issuer / group entity) or free-float market caps, > 0.
    single_cap : float, default 0.10
        Cap c on any one weight.
    group_threshold : float, default 0.05
        Threshold b: names with weight > b form the group.
    group_cap : float, default 0.40
        Cap G on the sum of the group's weights.
    buffered : bool, default False
        Multiply c, b and G by ``buffer_factor`` (0.9 gives the 9 / 4.5 / 36 % targets used in
        practice so that drift between reviews does not breach 10 / 5 / 40).
    buffer_factor : float, default 0.9
        Buffer multiplier, in (0, 1].
    tol : float, default 1e-12
        Allowed excess over a cap.

    Returns
    -------
    CappingResult
        ``binding``: ``("single",)`` if capping at c is enough, otherwise ``("group",)`` or
        ``("single", "group")``; empty when the input complies.

    Raises
    ------
    InfeasibleRuleError
        When no group size k gives ``min(G, k c) + (n - k) b >= 1`` with the group above b.

    Notes
    -----
    1. Apply the single cap c. If ``sum_{w_i > b} w_i <= G``, stop.
    2. Otherwise, for k = (size of that group), k - 1, ..., 0: give the k largest names
       ``S = min(G, k c)`` in proportion to their uncapped weights with cap c, and the others
       ``1 - S`` in proportion with cap b. Accept the first k for which the smallest group
       weight stays above b and the others can absorb ``1 - S``. Names leaving the group are
       thus held at b (the MSCI "reduce to the threshold" step).
    This is a transparent approximation of MSCI's pivot algorithm, not a replica of it.
    """
    bf = _fraction("buffer_factor", buffer_factor)
    scale = bf if buffered else 1.0
    c = _fraction("single_cap", single_cap) * scale
    b = _fraction("group_threshold", group_threshold) * scale
    g = _fraction("group_cap", group_cap) * scale
    if b >= c:
        raise ValueError(
            f"group_threshold ({group_threshold!r}) must be below single_cap ({single_cap!r})"
        )
    tol = _tol(tol)
    rule = f"single<={c:g}, sum(w>{b:g})<={g:g}"
    u, us, order = _prepare(weights)
    n = u.size

    def group_sum(w: FloatArray) -> float:
        return float(w[w > b + tol].sum())

    _check_capacity(rule, n, c, tol, label="single cap")
    if us[0] <= c + tol and group_sum(us) <= g + tol:
        return _unchanged(u, rule)
    v, at_cap, it = _water_fill(us, np.full(n, c), 1.0, tol)
    if group_sum(v) <= g + tol:
        return _result(u, order, v, at_cap, binding=("single",), iterations=it, rule=rule)

    k_start = int(np.count_nonzero(v > b + tol))
    for k in range(k_start, -1, -1):
        top = np.empty(0)
        top_at_cap = np.zeros(0, dtype=np.bool_)
        s = 0.0
        if k > 0:
            s = min(g, k * c)
            top, top_at_cap, it_top = _water_fill(us[:k], np.full(k, c), s, tol)
            it += it_top
            if top[-1] <= b + tol:
                continue
        rest_total = 1.0 - s
        if (n - k) * b < rest_total - tol:
            continue
        rest, rest_capped, it_rest = _water_fill(us[k:], np.full(n - k, b), rest_total, tol)
        it += it_rest
        return _split_result(
            u,
            order,
            (top, top_at_cap),
            (rest, rest_capped),
            group="group",
            iterations=it,
            rule=rule,
        )
    raise InfeasibleRuleError(
        rule,
        f"{n} names cannot reach 100 %: for every group size k, min(G, k*c) + (n-k)*b < 1 "
        "or the group falls to the threshold",
    )
