-- Reliability: records that cannot be stored are quarantined, never dropped
-- silently; a day being exported proves it is alive with a heartbeat, so a
-- row left `running` by a process that died is recognisably stale.

-- Records of a page that could not be stored as transactions (unparsable,
-- wrong types, inexact amounts, dated outside the requested window). The
-- rest of their page is stored; the day is `done` with a reject count.
CREATE TABLE sonnys.rejected_records (
    account        text        NOT NULL,
    site_code      text        NOT NULL,
    business_date  date        NOT NULL,   -- the site-day whose export received it
    record_key     text        NOT NULL,   -- transaction id, else "fnv:" and a hash of the raw text
    transaction_id text,                   -- when the record names one
    reason         text        NOT NULL,
    raw            text        NOT NULL,   -- the record as received, as JSON text (NUL escaped as \u0000)
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, site_code, business_date, record_key)
);
CREATE INDEX rejected_records_transaction ON sonnys.rejected_records (account, transaction_id);

ALTER TABLE sonnys.sync_days
    ADD COLUMN rejected     integer NOT NULL DEFAULT 0,  -- records quarantined by the latest export
    ADD COLUMN heartbeat_at timestamptz;                 -- last sign of life of a running export

-- Freshness per site. Columns are only ever added at the end. A running
-- export writes its heartbeat at least every 30 s: two minutes without one
-- means the process that exported the day is gone (store.rs: STALE_AFTER).
CREATE OR REPLACE VIEW reporting.sync_health AS
WITH configured AS (
    SELECT DISTINCT ON (account, code) account, code AS site_code, name AS site_name, effective_timezone
      FROM sonnys.sites
     WHERE code <> ''
     ORDER BY account, code, updated_at DESC
), known AS (
    SELECT account, site_code FROM configured
    UNION
    SELECT DISTINCT account, site_code FROM sonnys.sync_days
)
SELECT k.account,
       k.site_code,
       c.site_name,
       d.last_complete_business_date,
       CASE WHEN d.first_done IS NULL THEN NULL
            ELSE greatest(y.yesterday - d.first_done + 1, 0) - d.done_through_yesterday
       END::integer                     AS missing_days,
       d.failed_days,
       (SELECT sd.last_error
          FROM sonnys.sync_days sd
         WHERE sd.account = k.account AND sd.site_code = k.site_code
           AND sd.status <> 'done' AND sd.last_error IS NOT NULL
         ORDER BY coalesce(sd.finished_at, sd.started_at) DESC NULLS LAST, sd.business_date DESC
         LIMIT 1)                       AS last_error,
       d.last_synced_at,
       d.running_days,
       d.stale_days,
       d.rejected_records
  FROM known k
  LEFT JOIN configured c ON c.account = k.account AND c.site_code = k.site_code
 CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE coalesce(c.effective_timezone, 'UTC'))::date - 1 AS yesterday) y
 CROSS JOIN LATERAL (
        SELECT max(sd.business_date) FILTER (WHERE sd.status = 'done')       AS last_complete_business_date,
               min(sd.business_date) FILTER (WHERE sd.status = 'done')       AS first_done,
               count(*) FILTER (WHERE sd.status = 'done'
                                  AND sd.business_date <= y.yesterday)       AS done_through_yesterday,
               count(*) FILTER (WHERE sd.status = 'failed')::integer         AS failed_days,
               max(sd.finished_at) FILTER (WHERE sd.status = 'done')         AS last_synced_at,
               count(*) FILTER (WHERE sd.status = 'running'
                                  AND coalesce(sd.heartbeat_at, sd.started_at, '-infinity') >= now() - interval '2 minutes')::integer AS running_days,
               count(*) FILTER (WHERE sd.status = 'running'
                                  AND coalesce(sd.heartbeat_at, sd.started_at, '-infinity') < now() - interval '2 minutes')::integer     AS stale_days,
               coalesce(sum(sd.rejected) FILTER (WHERE sd.status = 'done'), 0)::integer              AS rejected_records
          FROM sonnys.sync_days sd
         WHERE sd.account = k.account AND sd.site_code = k.site_code) d;

COMMENT ON COLUMN reporting.sync_health.failed_days IS 'Business days whose latest export failed (not counting stale ones).';
COMMENT ON COLUMN reporting.sync_health.running_days IS 'Business days being exported now (their heartbeat is fresh).';
COMMENT ON COLUMN reporting.sync_health.stale_days IS 'Business days left `running` by a process that stopped (no heartbeat for 2 minutes); the next run redoes them.';
COMMENT ON COLUMN reporting.sync_health.rejected_records IS 'Records quarantined in sonnys.rejected_records by the latest export of the site''s done days.';
