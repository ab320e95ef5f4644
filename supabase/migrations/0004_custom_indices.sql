-- 0004_custom_indices: custom index definitions with their owner and visibility on Supabase.
--
-- Paste into the Supabase SQL editor after 0003_margin.sql (it references public.users), or
-- apply with psql; the test fixture applies every file in this folder in name order. Re-running
-- it is harmless. Never edit a migration that has shipped: add the next numbered file. The
-- embedded (SQLite) twin is the migration ``indices_0002_owner`` of app/indices/repository.py.
--
--   custom_indices   one definition per name (the URL slug): the definition as JSON, the user
--                    who created it (deleting the user deletes their indices) and its
--                    visibility, private (owner and admins only) or public (anyone may read)
--
-- Access: row-level security is on. The server writes with the service-role key (which
-- bypasses RLS) and checks ownership itself; anon and authenticated may only read public rows,
-- as a dashboard would, and write nothing.

create table if not exists public.custom_indices (
    name           text        primary key check (length(name) between 2 and 64),
    definition     jsonb       not null check (jsonb_typeof(definition) = 'object'),
    owner_id       bigint      not null references public.users (id) on delete cascade,
    owner_username text        not null,
    visibility     text        not null default 'private'
                               check (visibility in ('public', 'private')),
    created_at     timestamptz not null default now()
);
create index if not exists custom_indices_owner_idx on public.custom_indices (owner_id);
comment on table public.custom_indices is
    'Custom index definitions: owner (a user) and visibility (private: owner and admins only).';

alter table public.custom_indices enable row level security;

-- Supabase grants everything on new tables to anon and authenticated by default privileges:
-- take that back, then grant exactly what each role needs.
revoke all on table public.custom_indices from anon, authenticated;
grant select on table public.custom_indices to anon, authenticated;
grant select, insert, update, delete on table public.custom_indices to service_role;

drop policy if exists "dashboard reads public custom indices" on public.custom_indices;
create policy "dashboard reads public custom indices" on public.custom_indices
    for select to anon, authenticated using (visibility = 'public');
