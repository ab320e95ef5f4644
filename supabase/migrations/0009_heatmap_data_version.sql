-- 0009_heatmap_data_version: the price data version each heatmap was computed from.
--
-- Paste into the Supabase SQL editor after 0008, or apply with psql; the test fixture applies
-- every file in this folder in name order. Re-running it is harmless. Never edit a migration
-- that has shipped: add the next numbered file. The embedded (SQLite) twin is the
-- heatmap_0002_data_version migration in app/heatmap/store.py.
--
--   heatmap_windows.data_version      the price store's data_version (market_ingests) of the
--                                     panel the served rows were computed from
--   heatmap_runs.data_version         the same, for each precompute run
--   heatmap_checkpoints.data_version  the same, for the rows of an unfinished run (a resume
--                                     reuses them only for the same version)
--
-- NULL: stored before the version was recorded. replace_heatmap_window and start_heatmap_run
-- take it as a last parameter defaulting to null; the versions of 0001 without it are dropped,
-- so PostgREST has one candidate per name.

alter table public.heatmap_windows add column if not exists data_version bigint;
alter table public.heatmap_runs add column if not exists data_version bigint;
alter table public.heatmap_checkpoints add column if not exists data_version bigint;

drop function if exists public.replace_heatmap_window(integer, text, text, jsonb, date, timestamptz);

create or replace function public.replace_heatmap_window(
    p_window integer,
    p_mode text,
    p_run_id text,
    p_rows jsonb,
    p_as_of date,
    p_computed_at timestamptz default now(),
    p_data_version bigint default null
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
    -- One transaction (the function call): readers see the old window or the new, never a mix,
    -- and the window row names the price data version of exactly these rows.
    delete from public.heatmap_cache where "window" = p_window and mode = p_mode;
    insert into public.heatmap_cache
        (ticker, "window", mode, position, "row", run_id, as_of, computed_at)
    select item.value ->> 'ticker', p_window, p_mode, item.ordinality::integer,
           item.value -> 'row', p_run_id, p_as_of, coalesce(p_computed_at, now())
    from jsonb_array_elements(p_rows) with ordinality as item(value, ordinality);
    get diagnostics inserted = row_count;
    insert into public.heatmap_windows as w
        ("window", mode, run_id, as_of, computed_at, row_count, data_version)
    values (p_window, p_mode, p_run_id, p_as_of, coalesce(p_computed_at, now()), inserted,
            p_data_version)
    on conflict ("window", mode) do update
        set run_id = excluded.run_id, as_of = excluded.as_of,
            computed_at = excluded.computed_at, row_count = excluded.row_count,
            data_version = excluded.data_version;
    return inserted;
end;
$$;
comment on function
    public.replace_heatmap_window(integer, text, text, jsonb, date, timestamptz, bigint) is
    'Atomically replace the heatmap rows of one window and mode, with the price data version '
    'they were computed from; returns rows inserted.';

drop function if exists public.start_heatmap_run(
    text, integer, text, date, integer, text, integer, jsonb, timestamptz, integer
);

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
    p_keep integer default 20,
    p_data_version bigint default null
)
returns void
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    insert into public.heatmap_runs as r
        (run_id, "window", mode, state, total, completed, failed, failures, error, owner,
         as_of, started_at, finished_at, heartbeat, data_version)
    values
        (p_run_id, p_window, p_mode, 'running', p_total, p_completed,
         jsonb_array_length(coalesce(p_failures, '[]'::jsonb)), coalesce(p_failures, '[]'::jsonb),
         null, p_owner, p_as_of, p_started_at, null, p_started_at, p_data_version)
    on conflict (run_id, "window", mode) do update
        set state = 'running', total = excluded.total, completed = excluded.completed,
            failed = excluded.failed, failures = excluded.failures, error = null,
            owner = excluded.owner, as_of = excluded.as_of, started_at = excluded.started_at,
            finished_at = null, heartbeat = excluded.heartbeat,
            data_version = excluded.data_version;
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
    text, integer, text, date, integer, text, integer, jsonb, timestamptz, integer, bigint
) is 'Record a heatmap run as running, with the price data version it computes from (pruning '
    'old runs of its window and mode).';

revoke all on function
    public.replace_heatmap_window(integer, text, text, jsonb, date, timestamptz, bigint)
    from public, anon, authenticated;
revoke all on function public.start_heatmap_run(
    text, integer, text, date, integer, text, integer, jsonb, timestamptz, integer, bigint
) from public, anon, authenticated;

grant execute on function
    public.replace_heatmap_window(integer, text, text, jsonb, date, timestamptz, bigint)
    to service_role;
grant execute on function public.start_heatmap_run(
    text, integer, text, date, integer, text, integer, jsonb, timestamptz, integer, bigint
) to service_role;

-- Let a running PostgREST pick up the new columns and functions (harmless when none listens).
notify pgrst, 'reload schema';
