-- 0005_margin_groups: admins' liquidity groups of symbols (SEBI 2020 margin framework).
--
-- Paste into the Supabase SQL editor after 0003_margin.sql, or apply with psql; the test
-- fixture applies every file in this folder in name order. Re-running it is harmless. Never
-- edit a migration that has shipped: add the next numbered file. The embedded (SQLite) twin is
-- the migration ``0005_margin_groups`` of app/core/tables.py.
--
--   margin_groups   per-symbol liquidity group (I, II or III) set by an admin; without a row
--                   the service classifies the symbol by its proxy (traded days, index
--                   membership) and says so
--
-- Access: as the other margin tables, row-level security on and no policies: only
-- service_role (the server) reads or writes.

create table if not exists public.margin_groups (
    symbol          text        primary key,
    liquidity_group text        not null check (liquidity_group in ('I', 'II', 'III')),
    updated_at      timestamptz not null default now(),
    updated_by      text
);
comment on table public.margin_groups is 'Per-symbol liquidity-group overrides (SEBI 2020).';

alter table public.margin_groups enable row level security;
revoke all on table public.margin_groups from anon, authenticated;
grant select, insert, update, delete on table public.margin_groups to service_role;
