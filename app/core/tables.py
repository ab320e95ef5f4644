"""Embedded-database tables of margin monitoring and its users (migration ``0003_margin``).

The same tables for Supabase are in ``supabase/migrations/0003_margin.sql``. Money columns
hold integer paise; the margin rate is decimal text.
"""

from __future__ import annotations

from app.core.db import register_migration

MIGRATION_NAME = "0003_margin"

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    loan_paise INTEGER NOT NULL DEFAULT 0 CHECK (loan_paise >= 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    client_id INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    symbol TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    cost_basis_paise INTEGER NOT NULL CHECK (cost_basis_paise >= 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (client_id, symbol)
);
CREATE TABLE IF NOT EXISTS loan_transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (type IN ('draw', 'repay')),
    amount_paise INTEGER NOT NULL CHECK (amount_paise > 0),
    balance_after_paise INTEGER NOT NULL CHECK (balance_after_paise >= 0),
    note TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT
);
CREATE INDEX IF NOT EXISTS loan_transactions_client ON loan_transactions (client_id, id);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'client')),
    client_id INTEGER REFERENCES clients (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    CHECK ((role = 'admin' AND client_id IS NULL) OR (role = 'client' AND client_id IS NOT NULL))
);
CREATE TABLE IF NOT EXISTS margin_rates (
    symbol TEXT PRIMARY KEY,
    rate TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT
);
CREATE TABLE IF NOT EXISTS margin_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    triggered_at TEXT NOT NULL,
    prices_as_of TEXT,
    portfolio_value_paise INTEGER NOT NULL,
    loan_paise INTEGER NOT NULL,
    net_equity_paise INTEGER NOT NULL,
    requirement_paise INTEGER NOT NULL,
    shortfall_paise INTEGER NOT NULL CHECK (shortfall_paise > 0),
    last_checked_at TEXT NOT NULL,
    last_shortfall_paise INTEGER NOT NULL,
    resolved_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS margin_calls_one_open
    ON margin_calls (client_id) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS margin_calls_triggered ON margin_calls (triggered_at);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL,
    failed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, failed_at)
"""

register_migration(MIGRATION_NAME, MIGRATION_SQL)

# Admins' liquidity groups (SEBI 2020 margin framework); supabase/migrations/0005_margin_groups.sql.
register_migration(
    "0005_margin_groups",
    """
    CREATE TABLE IF NOT EXISTS margin_groups (
        symbol TEXT PRIMARY KEY,
        liquidity_group TEXT NOT NULL CHECK (liquidity_group IN ('I', 'II', 'III')),
        updated_at TEXT NOT NULL,
        updated_by TEXT
    );
    """,
)

# Token version of a user, bumped by a password change (access tokens carry it);
# supabase/migrations/0007_user_token_version.sql.
register_migration(
    "0007_user_token_version",
    "ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0 "
    "CHECK (token_version >= 0)",
)
