"""Stress tests through factor betas and the margin of a whole book (DOMAIN.md sections 9, 12).

A scenario is a vector of factor moves ``f`` over the horizon (``"Nifty -10%"`` is
``f_market = -0.10``). Stocks move by ``r_i = B_i . f`` (no alpha), floored at -100%; each
projected price is ``P_i (1 + r_i)`` rounded half-up to the paisa, and section 9's margin is
computed again at those prices, for every client of a book at once.

Money here is **integer paise** (int64) and rates are **integer basis points** (1 bp = 0.0001,
the four decimals of the service's rates), so the vectorised book margin is exact and equals
:func:`app.analytics.margin.margin_summary` (Decimal) to the paisa: ``R = ceil(sum_i m_i q_i
p_i)`` per client (rounded once, over the whole portfolio), ``E = MV - loan``, ``shortfall =
max(0, R - E)``, each position's requirement its largest-remainder share of ``R``.

Public API
----------
* :func:`scenario_factor_moves` -> :class:`FactorMoves` -- direct or conditional moves.
* :func:`stock_moves` -- ``max(B f, -1)`` per stock.
* :func:`shocked_prices` -- projected prices in paise.
* :class:`Book`, :func:`book_margin` -> :class:`BookMargin` -- the margin of every client.
* :func:`stress_book` -> :class:`BookStress` -- baseline and stressed margin, ranked.

Nothing loops over clients in Python: a book is flat position arrays with client offsets
(CSR layout) and per-client sums are differences of one cumulative sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from app.analytics._arrays import BoolArray, FloatArray, IntArray, finite_array
from app.analytics.risk import check_covariance

__all__ = [
    "BP_PER_UNIT",
    "NO_CURE",
    "Book",
    "BookMargin",
    "BookStress",
    "FactorMoves",
    "book_margin",
    "scenario_factor_moves",
    "shocked_prices",
    "stock_moves",
    "stress_book",
]

BP_PER_UNIT = 10_000
"""Rates are integer basis points: 2500 bp = 25%."""
NO_CURE = -1
"""``market_value_to_sell`` of a client whose shortfall no sale can cure (equity below 0)."""
_INT_LIMIT = 2**62
"""Largest amount in paise the int64 maths accepts (sums of two such amounts cannot overflow)."""


def _ints(name: str, values: ArrayLike) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


# --- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorMoves:
    """The factor moves of a scenario.

    Attributes
    ----------
    moves : ndarray, shape (n_factors,)
        Move of every factor over the horizon (named ones as given).
    named : ndarray of bool, shape (n_factors,)
        True for the factors the scenario names.
    method : {"direct", "conditional"}
        How the unnamed factors were set (0, or their conditional expectation).
    """

    moves: FloatArray
    named: BoolArray
    method: Literal["direct", "conditional"]


def scenario_factor_moves(
    shocks: ArrayLike,
    named: ArrayLike,
    *,
    method: Literal["direct", "conditional"] = "direct",
    factor_cov: ArrayLike | None = None,
) -> FactorMoves:
    """Full factor-move vector of a scenario that names some factors.

    Parameters
    ----------
    shocks : array_like, shape (n_factors,)
        Moves of the named factors (entries of unnamed factors are ignored and may be NaN).
    named : array_like of bool, shape (n_factors,)
        Which factors the scenario names (at least one).
    method : {"direct", "conditional"}, default "direct"
        ``direct``: the unnamed factors do not move. ``conditional``: they move by their
        expectation given the named ones under a zero-mean normal model.
    factor_cov : array_like, shape (n_factors, n_factors), optional
        Factor covariance ``F`` (any common scale; required for ``conditional``).

    Returns
    -------
    FactorMoves

    Notes
    -----
    Conditional: ``f_o = F_on F_nn^-1 f_n``. The named block ``F_nn`` must be non-singular
    (eigenvalues above 1e-12 of the largest), else ValueError. DOMAIN.md's example: with
    ``F = [[0.04, 0.01], [0.01, 0.09]]`` and the first factor at -10%, the second moves by
    0.01 / 0.04 x -10% = -2.5%.
    """
    mask = np.asarray(named)
    if mask.ndim != 1 or mask.dtype != np.bool_:
        raise ValueError("named must be a one-dimensional boolean array")
    raw = np.asarray(shocks, dtype=np.float64)
    if raw.shape != mask.shape:
        raise ValueError(f"shocks must have shape {mask.shape}, got {raw.shape}")
    if not mask.any():
        raise ValueError("named must name at least one factor")
    if not np.all(np.isfinite(raw[mask])):
        raise ValueError("shocks of the named factors must be finite")
    moves = np.where(mask, raw, 0.0)
    if method == "direct":
        return FactorMoves(moves=moves, named=mask.copy(), method="direct")
    if method != "conditional":
        raise ValueError(f"method must be 'direct' or 'conditional', got {method!r}")
    if factor_cov is None:
        raise ValueError("factor_cov is required for the conditional method")
    cov = check_covariance("factor_cov", factor_cov)
    if cov.shape != (mask.size, mask.size):
        raise ValueError(f"factor_cov must have shape ({mask.size}, {mask.size}), got {cov.shape}")
    other = ~mask
    if other.any():
        f_nn = cov[np.ix_(mask, mask)]
        eig = np.linalg.eigvalsh(f_nn)
        if eig[0] <= 1e-12 * max(float(eig[-1]), 1e-300):
            raise ValueError(
                "the named factors' covariance block is singular (a named factor has no "
                "variance, or named factors are collinear): use the direct method"
            )
        moves[other] = cov[np.ix_(other, mask)] @ np.linalg.solve(f_nn, moves[mask])
    return FactorMoves(moves=moves, named=mask.copy(), method="conditional")


def stock_moves(betas: ArrayLike, factor_moves: ArrayLike) -> FloatArray:
    """Scenario return of each stock, ``r_i = max(B_i . f, -1)``.

    Parameters
    ----------
    betas : array_like, shape (n_stocks, n_factors)
        Factor betas (no alpha: a stress is a move, not a forecast).
    factor_moves : array_like, shape (n_factors,)

    Returns
    -------
    ndarray, shape (n_stocks,)
        Floored at -100% (a price cannot go below zero).
    """
    b = finite_array("betas", betas, 2)
    f = finite_array("factor_moves", factor_moves, 1)
    if b.shape[1] != f.shape[0]:
        raise ValueError(f"betas have {b.shape[1]} factors, factor_moves {f.shape[0]}")
    return np.asarray(np.maximum(b @ f, -1.0), dtype=np.float64)


def shocked_prices(prices_paise: ArrayLike, moves: ArrayLike) -> IntArray:
    """Projected prices ``P (1 + r)`` in paise, rounded half-up to the paisa.

    Parameters
    ----------
    prices_paise : array_like of int, shape (n,)
        Current prices in paise (>= 0).
    moves : array_like, shape (n,)
        Returns over the horizon, each >= -1.

    Returns
    -------
    ndarray of int64, shape (n,)
        ``floor(P (1 + r) + 1/2)``: a price the exchange can print, so the projected margin is
        exactly the margin report at those prices.
    """
    p = _ints("prices_paise", prices_paise)
    r = finite_array("moves", moves, 1)
    if r.shape != p.shape:
        raise ValueError(f"moves must have shape {p.shape}, got {r.shape}")
    if np.any(p < 0):
        raise ValueError("prices_paise must be >= 0")
    if np.any(r < -1.0):
        raise ValueError("moves must be >= -1 (a price cannot fall below zero)")
    projected = np.floor(p * (1.0 + r) + 0.5)
    if projected.size and float(projected.max()) >= _INT_LIMIT:
        raise ValueError("a projected price exceeds the int64 range")
    return projected.astype(np.int64)


# --- book margin ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Book:
    """Long positions of many clients, flat and grouped by client (CSR layout).

    Attributes
    ----------
    offsets : ndarray of int64, shape (n_clients + 1,)
        Client ``c`` holds positions ``offsets[c]:offsets[c + 1]`` (non-decreasing, from 0).
    symbol_index : ndarray of int64, shape (n_positions,)
        Index of each position's symbol in the price arrays.
    quantities : ndarray of int64, shape (n_positions,)
        Whole shares (>= 0).
    rates_bp : ndarray of int64, shape (n_positions,)
        Requirement rate of each position in basis points, 1..10000.
    loans_paise : ndarray of int64, shape (n_clients,)
        Outstanding loan per client (>= 0).
    """

    offsets: IntArray
    symbol_index: IntArray
    quantities: IntArray
    rates_bp: IntArray
    loans_paise: IntArray

    def __post_init__(self) -> None:
        offsets = _ints("offsets", self.offsets)
        n_pos = int(offsets[-1]) if offsets.size else -1
        if offsets.size == 0 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must start at 0 and be non-decreasing")
        for name in ("symbol_index", "quantities", "rates_bp"):
            arr = _ints(name, getattr(self, name))
            if arr.shape != (n_pos,):
                raise ValueError(f"{name} must have shape ({n_pos},), got {arr.shape}")
            object.__setattr__(self, name, arr)
        loans = _ints("loans_paise", self.loans_paise)
        if loans.shape != (offsets.size - 1,):
            raise ValueError(f"loans_paise must have shape ({offsets.size - 1},)")
        if np.any(self.quantities < 0):
            raise ValueError("quantities must be >= 0 (long-only book)")
        if np.any((self.rates_bp < 1) | (self.rates_bp > BP_PER_UNIT)):
            raise ValueError("rates_bp must lie in 1..10000 (rates in (0, 1])")
        if np.any(loans < 0) or (loans.size and int(loans.max()) >= _INT_LIMIT):
            raise ValueError("loans_paise must be >= 0 and below 2**62")
        if np.any(self.symbol_index < 0):
            raise ValueError("symbol_index must be >= 0")
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "loans_paise", loans)

    @property
    def n_clients(self) -> int:
        """Number of clients."""
        return int(self.offsets.size - 1)

    @property
    def client_of_position(self) -> IntArray:
        """Client index of every position, shape (n_positions,)."""
        return np.repeat(np.arange(self.n_clients, dtype=np.int64), np.diff(self.offsets))


@dataclass(frozen=True)
class BookMargin:
    """Section 9's margin of every client of a book, in paise (int64).

    Attributes
    ----------
    position_values, position_requirements : ndarray of int64, shape (n_positions,)
        ``q p``, and each position's share of its client's ``R``: ``m q p`` rounded down or up
        to the paisa (largest remainder, ties to the earlier position) so the shares add up
        to ``R``.
    market_value, loan, net_equity, requirement, shortfall, excess : ndarray of int64,
    shape (n_clients,)
        ``MV = sum q p``, ``E = MV - loan``, ``R = ceil(sum m q p)``, ``max(0, R - E)``,
        ``max(0, E - R)``.
    margin_call : ndarray of bool, shape (n_clients,)
        ``shortfall > 0``.
    market_value_to_sell : ndarray of int64, shape (n_clients,)
        ``min(MV, ceil(shortfall MV / sum m q p))`` (``shortfall / m``) to sell pro rata
        (proceeds repay the loan); 0
        without a call, :data:`NO_CURE` (-1) when no sale can cure it (``E < 0``).
    """

    position_values: IntArray
    position_requirements: IntArray
    market_value: IntArray
    loan: IntArray
    net_equity: IntArray
    requirement: IntArray
    shortfall: IntArray
    excess: IntArray
    margin_call: BoolArray
    market_value_to_sell: IntArray


def _client_sums(offsets: IntArray, values: IntArray) -> IntArray:
    cumulative = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(values, dtype=np.int64)])
    return np.asarray(cumulative[offsets[1:]] - cumulative[offsets[:-1]], dtype=np.int64)


def _ceil_div(num: IntArray, den: IntArray | int) -> IntArray:
    return np.asarray(-((-num) // den), dtype=np.int64)


def _rank_in_client(offsets: IntArray, client: IntArray, remainders: IntArray) -> IntArray:
    """Rank of each position within its client by remainder, largest first (ties by index)."""
    n = remainders.size
    # One int64 key (client, then remainder descending); the stable sort keeps index order on
    # ties. Remainders lie in [0, 10^4), so the key is exact; ~15x faster than a lexsort.
    key = client * BP_PER_UNIT + (BP_PER_UNIT - 1 - remainders)
    order = np.argsort(key, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n, dtype=np.int64) - offsets[client[order]]
    return rank


def book_margin(book: Book, prices_paise: ArrayLike) -> BookMargin:
    """Margin of every client at the given prices, exact in paise.

    Parameters
    ----------
    book : Book
    prices_paise : array_like of int, shape (n_symbols,)
        Price of every symbol in paise (>= 0); ``book.symbol_index`` indexes it.

    Returns
    -------
    BookMargin

    Raises
    ------
    ValueError
        On a bad price, an index outside the prices, or amounts beyond 2**62 paise.

    Notes
    -----
    With ``v = q p`` and ``m`` in basis points, ``m v / 10^4 = m (v // 10^4) + m (v mod 10^4) /
    10^4``: the whole paise ``f = m (v // 10^4) + (m (v mod 10^4)) // 10^4`` and the remainder
    ``r = (m (v mod 10^4)) mod 10^4`` (in 10^-4 paise) of each position need no product that
    overflows. A client's ``R = sum f + ceil(sum r / 10^4)``: exact, rounded once; the
    ``R - sum f`` spare paise go to the positions with the largest ``r``. Every other figure
    is a sum or difference of int64 paise, and ``requirement + excess == net_equity`` (no
    call) or ``net_equity + shortfall == requirement`` (call) hold exactly. Equal to
    :func:`app.analytics.margin.margin_summary` per client.
    """
    prices = _ints("prices_paise", prices_paise)
    if np.any(prices < 0):
        raise ValueError("prices_paise must be >= 0")
    if book.symbol_index.size and int(book.symbol_index.max()) >= prices.size:
        raise ValueError("book.symbol_index points outside prices_paise")
    position_prices = prices[book.symbol_index]
    approx = book.quantities.astype(np.float64) * position_prices.astype(np.float64)
    if approx.size and float(approx.sum()) >= _INT_LIMIT:
        raise ValueError("the book's market value exceeds 2**62 paise")
    values = book.quantities * position_prices
    whole, part = np.divmod(values, BP_PER_UNIT)
    carry, remainders = np.divmod(book.rates_bp * part, BP_PER_UNIT)
    floors = np.asarray(book.rates_bp * whole + carry, dtype=np.int64)
    offsets = book.offsets
    market_value = _client_sums(offsets, values)
    floor_sum = _client_sums(offsets, floors)
    remainder_sum = _client_sums(offsets, remainders)
    spare = _ceil_div(remainder_sum, BP_PER_UNIT)
    requirement = floor_sum + spare
    client = book.client_of_position
    rank = _rank_in_client(offsets, client, remainders)
    requirements: IntArray = np.asarray(
        floors + (rank < spare[client]).astype(np.int64), dtype=np.int64
    )
    net_equity = market_value - book.loans_paise
    shortfall = np.maximum(requirement - net_equity, 0)
    excess = np.maximum(net_equity - requirement, 0)
    call = shortfall > 0
    to_sell = np.zeros(book.n_clients, dtype=np.int64)
    to_sell[call & (net_equity < 0)] = NO_CURE
    curable = np.flatnonzero(call & (net_equity >= 0))
    if curable.size:
        # shortfall / m with m = (sum m v) / MV, and sum m v = (10^4 sum f + sum r) / 10^4 paise:
        # sell = ceil(shortfall MV 10^4 / (10^4 sum f + sum r)).
        s, mv = shortfall[curable], market_value[curable]
        f, r = floor_sum[curable], remainder_sum[curable]
        bound = float(s.max()) * float(mv.max()) * BP_PER_UNIT
        if bound < _INT_LIMIT and float(f.max()) * BP_PER_UNIT < _INT_LIMIT:
            sell = _ceil_div(s * mv * BP_PER_UNIT, f * BP_PER_UNIT + r)
        else:  # exact Python integers for very large books
            num = s.astype(object) * mv.astype(object) * BP_PER_UNIT
            den = f.astype(object) * BP_PER_UNIT + r.astype(object)
            sell = np.asarray(-((-num) // den), dtype=np.int64)
        to_sell[curable] = np.minimum(mv, sell)
    return BookMargin(
        position_values=values,
        position_requirements=requirements,
        market_value=market_value,
        loan=book.loans_paise,
        net_equity=net_equity,
        requirement=requirement,
        shortfall=shortfall,
        excess=excess,
        margin_call=call,
        market_value_to_sell=to_sell,
    )


@dataclass(frozen=True)
class BookStress:
    """A book's margin before and after a scenario.

    Attributes
    ----------
    projected_prices : ndarray of int64, shape (n_symbols,)
        Prices after the scenario, in paise.
    baseline, stressed : BookMargin
        At the current and at the projected prices.
    order : ndarray of int64, shape (n_clients,)
        Clients by stressed shortfall, largest first (ties by client index).
    """

    projected_prices: IntArray
    baseline: BookMargin
    stressed: BookMargin
    order: IntArray


def stress_book(book: Book, prices_paise: ArrayLike, moves: ArrayLike) -> BookStress:
    """Margin of every client before and after each symbol moves by ``moves``.

    Parameters
    ----------
    book : Book
    prices_paise : array_like of int, shape (n_symbols,)
        Current prices in paise.
    moves : array_like, shape (n_symbols,)
        Scenario return of each symbol (>= -1), e.g. from :func:`stock_moves`.

    Returns
    -------
    BookStress
    """
    prices = _ints("prices_paise", prices_paise)
    projected = shocked_prices(prices, moves)
    stressed = book_margin(book, projected)
    order = np.lexsort((np.arange(book.n_clients), -stressed.shortfall)).astype(np.int64)
    return BookStress(
        projected_prices=projected,
        baseline=book_margin(book, prices),
        stressed=stressed,
        order=order,
    )
