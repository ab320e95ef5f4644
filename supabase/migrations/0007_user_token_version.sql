-- 0007_user_token_version: a per-user token version that a password change bumps.
--
-- Paste into the Supabase SQL editor after 0003_margin.sql, or apply with psql; the test
-- fixture applies every file in this folder in name order. Re-running it is harmless. Never
-- edit a migration that has shipped: add the next numbered file. The embedded (SQLite) twin is
-- the migration ``0007_user_token_version`` of app/core/tables.py.
--
--   users.token_version         access tokens carry the user's id and this version; a token
--                               whose version is not the stored one is refused, so a password
--                               change revokes every token issued before (deleting the user
--                               revokes them too: ids are never reused)
--   auth_change_password(...)   sets the new hash and bumps the version in one statement
--
-- Access: as the other margin tables, only service_role (the server) may call it.

alter table public.users add column if not exists token_version integer not null default 0;

do $$
begin
    if not exists (
        select 1 from pg_constraint
        where conrelid = 'public.users'::regclass and conname = 'users_token_version_check'
    ) then
        alter table public.users
            add constraint users_token_version_check check (token_version >= 0);
    end if;
end;
$$;

create or replace function public.auth_change_password(p_user_id bigint, p_password_hash text)
returns setof public.users
language sql
security definer
set search_path = public, pg_temp
as $$
    update public.users
       set password_hash = p_password_hash, token_version = token_version + 1
     where id = p_user_id
    returning *;
$$;

revoke all on function public.auth_change_password(bigint, text)
    from public, anon, authenticated;
grant execute on function public.auth_change_password(bigint, text) to service_role;

-- Let a running PostgREST pick up the new column and function (harmless when none listens).
notify pgrst, 'reload schema';
