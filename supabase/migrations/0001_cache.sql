-- 0001_cache: the service's tables on Supabase (PostgreSQL 15 + PostgREST).
--
-- Paste into the Supabase SQL editor, or apply with psql; the test fixture applies every file
-- in this folder in name order on a throwaway cluster. Re-running it is harmless. Never edit a
-- migration that has shipped: add the next numbered file.
--
--   factor_betas_cache   TTL cache of factor-beta results (served only while expires_at > now)
--   heatmap_cache        one row per ticker x window x mode, replaced per window by the precompute
--   heatmap_windows      which run and as-of date each served window comes from
--   heatmap_runs         status of each precompute run (running / complete / failed)
--   heatmap_checkpoints  rows of an unfinished run, for resuming it
--   job_leases           single-runner locks for schedulers on several workers
--
-- Access (row-level security is on for every table):
--   service_role   the server; bypasses RLS; the only role that writes or calls the RPCs
--   anon,
--   authenticated  dashboard reads: SELECT on heatmap_cache, heatmap_windows, heatmap_runs and
--                  the live rows of factor_betas_cache; nothing else
-- Hosted Supabase loads safeupdate, so every UPDATE and DELETE below carries a WHERE filter.

-- ---------------------------------------------------------------------------------------------
-- Supabase's API roles, created only where missing: hosted Supabase and the Supabase CLI have
-- them already, a plain PostgreSQL (15 or newer) gets them here, so that the grants and policies
-- of every migration apply there too. NOLOGIN: PostgREST's login role (authenticator) switches
-- to them; service_role bypasses row-level security, as on Supabase.
-- ---------------------------------------------------------------------------------------------

do $$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
end
$$;
grant usage on schema public to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------

create table if not exists public.factor_betas_cache (
    ticker      text        not null,
    "window"    integer     not null check ("window" > 0),
    mode        text        not null,
    as_of       date        not null,
    value       jsonb       not null,
    computed_at timestamptz not null default now(),
    expires_at  timestamptz not null,
    primary key (ticker, "window", mode, as_of),
    check (expires_at > computed_at)
);
create index if not exists factor_betas_cache_expires_at_idx
    on public.factor_betas_cache (expires_at);
comment on table public.factor_betas_cache is
    'TTL cache of factor-beta results; a row is served only while expires_at > now().';

create table if not exists public.heatmap_cache (
    ticker      text        not null,
    "window"    integer     not null check ("window" > 0),
    mode        text        not null,
    position    integer     not null default 0,
    "row"       jsonb       not null,
    run_id      text        not null,
    as_of       date        not null,
    computed_at timestamptz not null default now(),
    primary key ("window", mode, ticker)
);
create index if not exists heatmap_cache_order_idx
    on public.heatmap_cache ("window", mode, position);
comment on table public.heatmap_cache is
    'Precomputed heatmap rows, kept until the next complete precompute replaces the window.';

create table if not exists public.heatmap_windows (
    "window"    integer     not null check ("window" > 0),
    mode        text        not null,
    run_id      text        not null,
    as_of       date        not null,
    computed_at timestamptz not null default now(),
    row_count   integer     not null check (row_count >= 0),
    primary key ("window", mode)
);
comment on table public.heatmap_windows is
    'Which run each served heatmap window comes from (written with its rows, atomically).';

create table if not exists public.heatmap_runs (
    run_id      text        not null,
    "window"    integer     not null check ("window" > 0),
    mode        text        not null,
    state       text        not null default 'running'
        check (state in ('never-run', 'running', 'complete', 'failed')),
    total       integer     not null default 0 check (total >= 0),
    completed   integer     not null default 0 check (completed >= 0),
    failed      integer     not null default 0 check (failed >= 0),
    failures    jsonb       not null default '[]'::jsonb,
    error       text,
    owner       text,
    as_of       date,
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    heartbeat   timestamptz not null default now(),
    primary key (run_id, "window", mode)
);
create index if not exists heatmap_runs_latest_idx
    on public.heatmap_runs ("window", mode, started_at desc);
comment on table public.heatmap_runs is
    'Heatmap precompute runs per window and mode; the most recently started one is the status.';

create table if not exists public.heatmap_checkpoints (
    "window"    integer     not null check ("window" > 0),
    mode        text        not null,
    run_id      text        not null,
    as_of       date        not null,
    rows        jsonb       not null default '[]'::jsonb,
    failures    jsonb       not null default '[]'::jsonb,
    updated_at  timestamptz not null default now(),
    primary key ("window", mode)
);
comment on table public.heatmap_checkpoints is
    'Rows an unfinished precompute has produced so far, apart from the served ones (resume).';

create table if not exists public.job_leases (
    name       text        primary key,
    owner      text        not null,
    expires_at timestamptz not null
);
comment on table public.job_leases is
    'Single-runner locks: a lease is held by owner until expires_at; see acquire_lease().';


-- ---------------------------------------------------------------------------------------------
-- Row-level security and grants
-- ---------------------------------------------------------------------------------------------

alter table public.factor_betas_cache enable row level security;
alter table public.heatmap_cache enable row level security;
alter table public.heatmap_windows enable row level security;
alter table public.heatmap_runs enable row level security;
alter table public.heatmap_checkpoints enable row level security;
alter table public.job_leases enable row level security;

-- Supabase grants everything on new tables to anon and authenticated by default privileges:
-- take that back, then grant exactly what each role needs.
revoke all on table public.factor_betas_cache, public.heatmap_cache, public.heatmap_windows,
    public.heatmap_runs, public.heatmap_checkpoints, public.job_leases
    from anon, authenticated;
grant select on table public.factor_betas_cache, public.heatmap_cache, public.heatmap_windows,
    public.heatmap_runs
    to anon, authenticated;
grant select, insert, update, delete on table public.factor_betas_cache, public.heatmap_cache,
    public.heatmap_windows, public.heatmap_runs, public.heatmap_checkpoints, public.job_leases
    to service_role;

drop policy if exists "dashboard reads live betas" on public.factor_betas_cache;
create policy "dashboard reads live betas" on public.factor_betas_cache
    for select to anon, authenticated using (expires_at > now());

drop policy if exists "dashboard reads heatmap" on public.heatmap_cache;
create policy "dashboard reads heatmap" on public.heatmap_cache
    for select to anon, authenticated using (true);

drop policy if exists "dashboard reads heatmap windows" on public.heatmap_windows;
create policy "dashboard reads heatmap windows" on public.heatmap_windows
    for select to anon, authenticated using (true);

drop policy if exists "dashboard reads heatmap runs" on public.heatmap_runs;
create policy "dashboard reads heatmap runs" on public.heatmap_runs
    for select to anon, authenticated using (true);

-- heatmap_checkpoints and job_leases have no policy: only service_role (which bypasses RLS)
-- can see or change them.

-- ---------------------------------------------------------------------------------------------
-- RPCs (POST /rest/v1/rpc/<name>); executable by service_role only
-- ---------------------------------------------------------------------------------------------

create or replace function public.purge_expired_factor_betas()
returns integer
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    deleted integer;
begin
    delete from public.factor_betas_cache where expires_at <= now();
    get diagnostics deleted = row_count;
    return deleted;
end;
$$;
comment on function public.purge_expired_factor_betas() is
    'Delete expired factor-beta cache rows; returns how many were deleted.';

create or replace function public.replace_heatmap_window(
    p_window integer,
    p_mode text,
    p_run_id text,
    p_rows jsonb,
    p_as_of date,
    p_computed_at timestamptz default now()
)
returns integer
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    inserted integer;
begin
    if p_rows is null or jsonb_typeof(p_rows) <> 'array' then
        raise exception 'p_rows must be a JSON array of {"ticker": ..., "row": {...}} objects'
            using errcode = '22023';
    end if;
    -- One transaction (the function call): readers see the old window or the new, never a mix.
    delete from public.heatmap_cache where "window" = p_window and mode = p_mode;
    insert into public.heatmap_cache
        (ticker, "window", mode, position, "row", run_id, as_of, computed_at)
    select item.value ->> 'ticker', p_window, p_mode, item.ordinality::integer,
           item.value -> 'row', p_run_id, p_as_of, coalesce(p_computed_at, now())
    from jsonb_array_elements(p_rows) with ordinality as item(value, ordinality);
    get diagnostics inserted = row_count;
    insert into public.heatmap_windows as w
        ("window", mode, run_id, as_of, computed_at, row_count)
    values (p_window, p_mode, p_run_id, p_as_of, coalesce(p_computed_at, now()), inserted)
    on conflict ("window", mode) do update
        set run_id = excluded.run_id, as_of = excluded.as_of,
            computed_at = excluded.computed_at, row_count = excluded.row_count;
    return inserted;
end;
$$;
comment on function
    public.replace_heatmap_window(integer, text, text, jsonb, date, timestamptz) is
    'Atomically replace the heatmap rows of one window and mode; returns rows inserted.';

create or replace function public.start_heatmap_run(
    p_run_id text,
    p_window integer,
    p_mode text,
    p_as_of date,
    p_total integer,
    p_owner text,
    p_completed integer default 0,
    p_failures jsonb default '[]'::jsonb,
    p_started_at timestamptz default now(),
    p_keep integer default 20
)
returns void
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    insert into public.heatmap_runs as r
        (run_id, "window", mode, state, total, completed, failed, failures, error, owner,
         as_of, started_at, finished_at, heartbeat)
    values
        (p_run_id, p_window, p_mode, 'running', p_total, p_completed,
         jsonb_array_length(coalesce(p_failures, '[]'::jsonb)), coalesce(p_failures, '[]'::jsonb),
         null, p_owner, p_as_of, p_started_at, null, p_started_at)
    on conflict (run_id, "window", mode) do update
        set state = 'running', total = excluded.total, completed = excluded.completed,
            failed = excluded.failed, failures = excluded.failures, error = null,
            owner = excluded.owner, as_of = excluded.as_of, started_at = excluded.started_at,
            finished_at = null, heartbeat = excluded.heartbeat;
    -- Keep the p_keep most recently started runs of this window and mode.
    delete from public.heatmap_runs as old
    where old."window" = p_window and old.mode = p_mode
      and old.run_id not in (
          select k.run_id from public.heatmap_runs as k
          where k."window" = p_window and k.mode = p_mode
          order by k.started_at desc
          limit greatest(p_keep, 1)
      );
end;
$$;
comment on function public.start_heatmap_run(
    text, integer, text, date, integer, text, integer, jsonb, timestamptz, integer
) is 'Record a heatmap run as running (pruning old runs of its window and mode).';

create or replace function public.acquire_lease(
    p_name text, p_owner text, p_ttl_seconds double precision
)
returns boolean
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    if p_ttl_seconds is null or p_ttl_seconds <= 0 then
        raise exception 'p_ttl_seconds must be positive' using errcode = '22023';
    end if;
    -- Take the lease when it is free or expired, or renew it when p_owner already holds it.
    insert into public.job_leases as l (name, owner, expires_at)
    values (p_name, p_owner, clock_timestamp() + make_interval(secs => p_ttl_seconds))
    on conflict (name) do update
        set owner = excluded.owner, expires_at = excluded.expires_at
        where l.owner = excluded.owner or l.expires_at <= clock_timestamp();
    return found;
end;
$$;
comment on function public.acquire_lease(text, text, double precision) is
    'Take or renew the named lease for p_ttl_seconds; false when another owner holds it.';

create or replace function public.release_lease(p_name text, p_owner text)
returns boolean
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    delete from public.job_leases where name = p_name and owner = p_owner;
    return found;
end;
$$;
comment on function public.release_lease(text, text) is
    'Release the named lease if p_owner holds it; true when something was released.';

revoke all on function public.purge_expired_factor_betas() from public, anon, authenticated;
revoke all on function
    public.replace_heatmap_window(integer, text, text, jsonb, date, timestamptz)
    from public, anon, authenticated;
revoke all on function public.start_heatmap_run(
    text, integer, text, date, integer, text, integer, jsonb, timestamptz, integer
) from public, anon, authenticated;
revoke all on function public.acquire_lease(text, text, double precision)
    from public, anon, authenticated;
revoke all on function public.release_lease(text, text) from public, anon, authenticated;

grant execute on function public.purge_expired_factor_betas() to service_role;
grant execute on function
    public.replace_heatmap_window(integer, text, text, jsonb, date, timestamptz) to service_role;
grant execute on function public.start_heatmap_run(
    text, integer, text, date, integer, text, integer, jsonb, timestamptz, integer
) to service_role;
grant execute on function public.acquire_lease(text, text, double precision) to service_role;
grant execute on function public.release_lease(text, text) to service_role;

-- Let a running PostgREST pick up the new tables and functions (harmless when none listens).
notify pgrst, 'reload schema';
