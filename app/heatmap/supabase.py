"""``app.heatmap.supabase``: where :func:`app.heatmap.service.build_heatmap_store` looks.

The adapter lives in :mod:`app.heatmap.supabase_store`; this module only re-exports it.
"""

from __future__ import annotations

from app.heatmap.supabase_store import (
    ResilientHeatmapStore,
    SupabaseHeatmapStore,
    build_supabase_heatmap_store,
)

__all__ = ["ResilientHeatmapStore", "SupabaseHeatmapStore", "build_supabase_heatmap_store"]
