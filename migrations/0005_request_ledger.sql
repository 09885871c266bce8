-- The request budget shared by every process that uses an API id. The vendor
-- counts requests per id across all its consumers, so processes on one id
-- (the service, a backfill, replicas) reserve each send here, in one short
-- transaction timed by the database's clock (src/budget/pg_ledger.rs).

-- One row per API id: the lock that orders reservations, and the pause that
-- a 429 seen by any process imposes on all of them.
CREATE TABLE sonnys.api_budget (
    api_id        text PRIMARY KEY,
    blocked_until timestamptz            -- no request of this id before then
);

-- Reserved send slots still inside the window (plus guard); older rows are
-- deleted by the next reservation. A slot is never given back.
CREATE TABLE sonnys.api_requests (
    api_id  text        NOT NULL,
    sent_at timestamptz NOT NULL         -- clock_timestamp() of the reservation
);
CREATE INDEX api_requests_window ON sonnys.api_requests (api_id, sent_at);
