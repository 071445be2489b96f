-- A page of the files no worker is processing, in id order after $1, for `cleanup`.
select id, storage_bucket, storage_path
from files
where processing_status <> 'processing' and id > $1
order by id
limit $2
