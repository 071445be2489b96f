-- Files whose worker vanished (lease expired) after their last allowed attempt end here
-- instead of being claimed again: a file that kills its worker must not kill every worker.
update files
set processing_status = 'failed',
    last_error = 'gave up after ' || attempts || ' attempts: the worker processing it stopped '
                 || 'responding before finishing (crash, kill or lost connection)',
    locked_by = null,
    locked_until = null,
    processed_at = now()
where processing_status = 'processing'
  and locked_until < now()
  and attempts >= $1
