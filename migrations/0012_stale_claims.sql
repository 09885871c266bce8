-- 0012: one home for the stale-claim rule.
--
-- A running export renews its heartbeat every 15 s; a `running` site-day
-- without a heartbeat for this long was left by a process that is gone.
-- Until now the rule was 120 s in the Rust code and `interval '2 minutes'`
-- in reporting.sync_health. It now lives here alone: the view and every
-- query of the daemon (`status`, the status page) call this function.

CREATE FUNCTION reporting.stale_claim_after() RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT interval '120 seconds' $$;

COMMENT ON FUNCTION reporting.stale_claim_after() IS
    'How long a running site-day may go without a heartbeat before it counts as left by a process that is gone (stale). The heartbeat is written every 15 s.';

-- The same view as in 0007, the stale rule read from the function.
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
       d.rejected_records,
       (SELECT max(e.clock_in)
          FROM sonnys.clock_entries e
         WHERE e.account = k.account AND e.site_code = k.site_code) AS last_clock_in_at,
       (SELECT max(sc.status_at)
          FROM sonnys.recurring_status_changes sc
         WHERE sc.account = k.account)  AS last_status_change_at
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
                                  AND coalesce(sd.heartbeat_at, sd.started_at, '-infinity') >= now() - reporting.stale_claim_after())::integer AS running_days,
               count(*) FILTER (WHERE sd.status = 'running'
                                  AND coalesce(sd.heartbeat_at, sd.started_at, '-infinity') < now() - reporting.stale_claim_after())::integer     AS stale_days,
               coalesce(sum(sd.rejected) FILTER (WHERE sd.status = 'done'), 0)::integer              AS rejected_records
          FROM sonnys.sync_days sd
         WHERE sd.account = k.account AND sd.site_code = k.site_code) d;

COMMENT ON COLUMN reporting.sync_health.running_days IS
    'Business days being exported now (status running, heartbeat within reporting.stale_claim_after()).';
COMMENT ON COLUMN reporting.sync_health.stale_days IS
    'Business days left running by a process that stopped (no heartbeat for reporting.stale_claim_after(), 2 minutes); the next run redoes them.';

GRANT EXECUTE ON FUNCTION reporting.stale_claim_after() TO sonnys_reader;
