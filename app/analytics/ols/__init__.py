"""Building blocks of the batched rolling OLS (:mod:`app.analytics.rolling_ols`).

* :mod:`.prepare` -- argument checks, the centred design, per-stock means;
* :mod:`.windows` -- which window ends to produce, and the window sums at those ends;
* :mod:`.solver` -- the vectorised LDL' solver and the classical statistics;
* :mod:`.pvalues` -- Student t p-values for millions of statistics at once;
* :mod:`.pages` -- the large arrays allocated without huge-page advice (cheaper first touch).
"""
