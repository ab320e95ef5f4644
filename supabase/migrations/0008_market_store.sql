-- 0008_market_store: the price store of record, shared by every replica and the batch jobs.
--
-- Paste into the Supabase SQL editor after 0007, or apply with psql; the test fixture applies
-- every file in this folder in name order. Re-running it is harmless. Never edit a migration
-- that has shipped: add the next numbered file. The embedded (SQLite) twin is app/market/store.py.
--
--   market_tickers   one id per ticker (NSE symbol or Yahoo proxy ticker): keeps the bar rows
--                    fixed-width, so a whole panel streams as binary COPY
--   market_bars      ADJUSTED daily closes (the return series of every analytic)
--   market_quotes    TRADED daily closes (valuation and quotes; never returns)
--   market_meta      store metadata (snapshot fingerprints)
--   market_ingests   the ingest log: one row per committed write, whose data_version is the
--                    version readers serve, with the data's as-of date and what it wrote
--
-- The service reads and writes these tables over a direct PostgreSQL connection (psycopg, through
-- Supabase's pooler), not PostgREST: one binary COPY moves a 1M-row panel in well under a second.
-- Access: row-level security is on and no API role has a grant, so PostgREST exposes nothing of
-- them; the connection's role (postgres, the table owner) bypasses RLS.

create table if not exists public.market_tickers (
    id     integer generated always as identity primary key,
    ticker text not null unique check (length(ticker) between 1 and 32)
);

create table if not exists public.market_bars (
    ticker_id integer          not null references public.market_tickers (id),
    date      date             not null,
    close     double precision not null check (close > 0 and close < 'infinity'),
    source    text             not null,
    primary key (ticker_id, date)
);

create table if not exists public.market_quotes (
    ticker_id integer          not null references public.market_tickers (id),
    date      date             not null,
    close     double precision not null check (close > 0 and close < 'infinity'),
    source    text             not null,
    primary key (ticker_id, date)
);

create table if not exists public.market_meta (
    key   text primary key,
    value text not null
);

create table if not exists public.market_ingests (
    data_version   bigint      primary key check (data_version > 0),
    as_of          date,
    source         text        not null,
    committed_at   timestamptz not null default now(),
    bars_written   integer     not null default 0,
    quotes_written integer     not null default 0,
    rescaled       integer     not null default 0
);
comment on table public.market_ingests is
    'One row per committed price write: data_version (what readers serve) and as_of.';

alter table public.market_tickers enable row level security;
alter table public.market_bars enable row level security;
alter table public.market_quotes enable row level security;
alter table public.market_meta enable row level security;
alter table public.market_ingests enable row level security;

revoke all on table public.market_tickers, public.market_bars, public.market_quotes,
    public.market_meta, public.market_ingests from anon, authenticated;
