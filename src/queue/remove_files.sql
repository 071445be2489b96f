-- `cleanup`: files rows whose objects are gone, with their chunks (cascade); usage rows
-- and the ledger stay. A row a worker has claimed since it was checked is left alone.
delete from files
where id = any($1) and processing_status <> 'processing'
returning id, storage_bucket, storage_path,
          (select count(*) from document_chunks c where c.file_id = files.id)
