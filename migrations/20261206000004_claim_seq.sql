-- The fencing token of a claim, apart from the retry budget. `attempts` is spent and
-- refunded (a shutdown or a storage pause gives the attempt back; `--reembed` and an app
-- setting a file back to pending reset it to 0), so (worker, attempts) can repeat, and a
-- worker holding an old lease could match a newer claim of the same file by the same
-- worker id and write over it. claim_seq only ever grows: every claim adds one, and every
-- fenced transition names the value its claim set.
alter table files add column if not exists claim_seq bigint not null default 0;

-- Any insert starts the count at 0: an app user may insert files rows (with every column,
-- as ORMs write them), and a value near bigint's end would make every claim statement
-- that meets the row fail with an overflow, for all workers. Users cannot update the
-- column (ragworker_apply_grants grants only the columns the contract names).
create or replace function ragworker_files_claim_seq_reset() returns trigger
language plpgsql as $$
begin
  new.claim_seq := 0;
  return new;
end
$$;
drop trigger if exists files_claim_seq_reset on files;
create trigger files_claim_seq_reset before insert on files
  for each row execute function ragworker_files_claim_seq_reset();

select ragworker_apply_grants();
