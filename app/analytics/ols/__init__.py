"""Building blocks of the batched rolling OLS (:mod:`app.analytics.rolling_ols`).

* :mod:`.pvalues` -- Student t p-values for millions of statistics at once;
* :mod:`.windows` -- which window ends to produce, and the window sums at those ends.
"""
