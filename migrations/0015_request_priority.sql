-- Priority across processes on one API id (src/budget/pg_ledger.rs). A
-- process whose requests wait for a slot records here the most urgent class
-- it waits with, with a short expiry; a reservation never takes a slot for a
-- request of a lower class while another live process waits with a higher
-- one. Both tables are written only by reservations, under the id's
-- sonnys.api_budget row lock. Names are relied on by dashboards: add, never
-- rename.

CREATE TABLE sonnys.api_waiters (
    api_id     text        NOT NULL,
    process    uuid        NOT NULL,
    priority   smallint    NOT NULL,
    next_look  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (api_id, process)
);

COMMENT ON TABLE sonnys.api_waiters IS
    'Processes whose requests wait for a slot of an API id''s budget, one row per process and id: written by each reservation that leaves requests waiting, removed by the one that leaves none, ignored once expired (a dead process). Internal to the request budget.';
COMMENT ON COLUMN sonnys.api_waiters.api_id IS
    'The API id whose slots the process waits for.';
COMMENT ON COLUMN sonnys.api_waiters.process IS
    'The waiting process (its ledger of this id; a new id each start).';
COMMENT ON COLUMN sonnys.api_waiters.priority IS
    'The most urgent class the process still waits with: 1 normal (nightly work), 0 background (a backfill). Other processes get no slot for a lower class while this row is live.';
COMMENT ON COLUMN sonnys.api_waiters.next_look IS
    'When the process will reserve again (database clock); a process held back asks again just after it.';
COMMENT ON COLUMN sonnys.api_waiters.expires_at IS
    'The row holds back others until then: next_look plus a grace (2 s) for a busy host; later it is ignored and deleted.';

ALTER TABLE sonnys.api_requests
    ADD COLUMN process  uuid,
    ADD COLUMN priority smallint;

COMMENT ON COLUMN sonnys.api_requests.process IS
    'The process that reserved the slot (as in sonnys.api_waiters); NULL when reserved by a version before 0015.';
COMMENT ON COLUMN sonnys.api_requests.priority IS
    'The class the slot was reserved for: 1 normal, 0 background; NULL when reserved by a version before 0015.';
