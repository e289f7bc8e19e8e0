-- Server secrets: random keys the service makes on first use and keeps across restarts, so
-- that what it signed (a recipient's acknowledgement link) stays valid after a restart and in
-- every process that serves the same database. The first process to store a name decides its
-- value; a secret is never changed by the service (delete the row to invalidate every link
-- signed with it).
create table secrets (
    name text primary key,
    value text not null check (length(value) >= 64),
    created_at text not null
);
