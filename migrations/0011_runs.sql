-- The finished runs of the service, so that `sonnys-etl status` and the
-- status page show the last run (and the last nights) from the database,
-- not only from the memory of the process that ran it: one row per run,
-- written when it finishes. Names are relied on by dashboards: add, never
-- rename.
CREATE TABLE sonnys.runs (
    replica      uuid        NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('ok', 'failed', 'interrupted')),
    site_days    bigint      NOT NULL CHECK (site_days >= 0),
    done         bigint      NOT NULL CHECK (done >= 0),
    failed       bigint      NOT NULL CHECK (failed >= 0),
    transactions bigint      NOT NULL CHECK (transactions >= 0),
    inserted     bigint      NOT NULL CHECK (inserted >= 0),
    updated      bigint      NOT NULL CHECK (updated >= 0),
    pages        bigint      NOT NULL CHECK (pages >= 0),
    requests     bigint      NOT NULL CHECK (requests >= 0),
    rate_limited bigint      NOT NULL CHECK (rate_limited >= 0),
    PRIMARY KEY (replica, started_at)
);
CREATE INDEX runs_finished ON sonnys.runs (finished_at DESC);

COMMENT ON TABLE sonnys.runs IS
    'One row per finished run of the service (sonnys-etl run): its outcome and figures, as the status page and `status` show them.';
COMMENT ON COLUMN sonnys.runs.replica IS
    'The process that ran it: the lease_owner of the site-days it exported (logged as replica at start).';
COMMENT ON COLUMN sonnys.runs.started_at IS
    'When the run started.';
COMMENT ON COLUMN sonnys.runs.finished_at IS
    'When the run finished (or stopped).';
COMMENT ON COLUMN sonnys.runs.outcome IS
    'ok; failed (something failed: a site-day, a refused account, a labour or membership export); interrupted (stopped by a signal, nothing failed). The outcome label of sonnys_etl_runs_total.';
COMMENT ON COLUMN sonnys.runs.site_days IS
    'Site-days the run set out to export.';
COMMENT ON COLUMN sonnys.runs.done IS
    'Site-days it exported completely.';
COMMENT ON COLUMN sonnys.runs.failed IS
    'Site-days whose export failed.';
COMMENT ON COLUMN sonnys.runs.transactions IS
    'Transactions received.';
COMMENT ON COLUMN sonnys.runs.inserted IS
    'Transactions stored new.';
COMMENT ON COLUMN sonnys.runs.updated IS
    'Stored transactions that changed.';
COMMENT ON COLUMN sonnys.runs.pages IS
    'Pages of transactions fetched.';
COMMENT ON COLUMN sonnys.runs.requests IS
    'API requests spent.';
COMMENT ON COLUMN sonnys.runs.rate_limited IS
    'Requests answered 429 (rate-limited).';
