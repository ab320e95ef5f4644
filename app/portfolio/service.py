"""Portfolio factor risk and stress tests on posted portfolios and on the margin book.

Risk (DOMAIN.md section 11) is :mod:`app.portfolio.risk_service`, stress (section 12)
:mod:`app.portfolio.stress_service`; both build on :mod:`app.portfolio.base`.
:class:`PortfolioService` is the one service the routes and the container see.
"""

from __future__ import annotations

from app.portfolio.risk_service import RiskService
from app.portfolio.stress_service import StressService

__all__ = ["PortfolioService"]


class PortfolioService(RiskService, StressService):
    """Factor risk of portfolios and stress tests of portfolios and of the margin book."""
