"""Worker threads of their own for blocking calls to the store of record (users, margin data).

Starlette's ``run_in_threadpool`` shares one pool (anyio's default limiter, 40 threads) with
every endpoint. When Supabase answers slowly, requests that wait on it would hold all of those
threads and every other endpoint (``/tickers``, the factor betas) would queue behind them.
:class:`StoreIO` runs such calls on a separate limiter of ``SUPABASE_CONCURRENCY`` threads: a
request waits for one of them without holding any thread (at most ``SUPABASE_WAIT_S``, then 503
``database_busy``), and the default pool stays free for everything else. The blocking calls
themselves are bounded by :class:`app.core.resilience.StoreGuard` (timeout, breaker).
"""

from __future__ import annotations

from app.core.errors import DatabaseBusy
from app.core.slots import SlotRunner


class StoreIO(SlotRunner):
    """At most ``slots`` blocking store calls at once, in threads outside the default pool."""

    noun = "database connections"
    error = DatabaseBusy
    own_threads = True
