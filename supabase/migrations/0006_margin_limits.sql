-- 0006_margin_limits: the maximum outstanding loan of a client, checked before anything is written.
--
-- Paste into the Supabase SQL editor after 0003_margin.sql, or apply with psql; the test
-- fixture applies every file in this folder in name order. Re-running it is harmless. Never
-- edit a migration that has shipped: add the next numbered file.
--
--   margin_loan_transaction   as in 0003, and a draw that would take clients.loan_paise above
--                             99,999,999,999,999,999 paise (999,999,999,999,999.99 rupees,
--                             MAX_LOAN of app/core/money.py) raises MG422 (the API answers 422)
--                             with the row still locked and nothing written; before, such draws
--                             were stored until the bigint overflowed (22003, a 503).
--
-- The embedded (SQLite) twin is app/margin/limits.py's check_loan_total, called by the SQLite
-- repository inside the same transaction.

create or replace function public.margin_loan_transaction(
    p_client_id bigint, p_type text, p_amount_paise bigint, p_note text, p_actor text
)
returns setof public.loan_transactions
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    max_loan constant bigint := 99999999999999999;
    balance bigint;
    new_balance numeric;
    txn_id bigint;
begin
    if p_amount_paise is null or p_amount_paise <= 0 then
        raise exception 'amount must be positive' using errcode = 'MG422';
    end if;
    -- The row lock serialises concurrent transactions of one client: no update is lost.
    select loan_paise into balance from public.clients where id = p_client_id for update;
    if not found then
        raise exception 'client % does not exist', p_client_id using errcode = 'MG404';
    end if;
    -- numeric, so the sum itself can never overflow before it is checked.
    new_balance := case p_type when 'draw' then balance::numeric + p_amount_paise
                               when 'repay' then balance::numeric - p_amount_paise end;
    if new_balance is null then
        raise exception 'type must be draw or repay' using errcode = 'MG422';
    end if;
    if new_balance < 0 then
        raise exception 'repayment % exceeds the outstanding loan %', p_amount_paise, balance
            using errcode = 'MG409', detail = balance::text;
    end if;
    if new_balance > max_loan then
        raise exception 'this draw would take the outstanding loan above the maximum of '
            '999999999999999.99 rupees (outstanding %.%)', balance / 100,
            lpad((balance % 100)::text, 2, '0')
            using errcode = 'MG422', detail = balance::text;
    end if;
    update public.clients set loan_paise = new_balance::bigint, updated_at = now()
        where id = p_client_id;
    insert into public.loan_transactions
        (client_id, type, amount_paise, balance_after_paise, note, created_by)
    values (p_client_id, p_type, p_amount_paise, new_balance::bigint, p_note, p_actor)
    returning id into txn_id;
    return query select * from public.loan_transactions where id = txn_id;
end;
$$;

revoke all on function public.margin_loan_transaction(bigint, text, bigint, text, text)
    from public, anon, authenticated;
grant execute on function public.margin_loan_transaction(bigint, text, bigint, text, text)
    to service_role;
