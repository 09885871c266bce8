-- Labour and membership: employees and their clock entries, recurring
-- (membership) accounts and their status changes, and the reporting views
-- built on them (labour cost, cost per car, active members, churn).
-- Names are relied on by dashboards: add, never rename.

-- Employees as /employee lists them. Key: the source's employee id.
CREATE TABLE sonnys.employees (
    account         text        NOT NULL,
    employee_id     bigint      NOT NULL,
    first_name      text,
    last_name       text,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, employee_id)
);

-- Clock entries have no id of their own: an employee clocks in once at a
-- time, so (employee, clock_in) identifies one. An edited clock-in is a new
-- key; the export replaces an employee's business days as a whole so the
-- old row does not stay behind (src/store/people.rs).
CREATE TABLE sonnys.clock_entries (
    account                    text        NOT NULL,
    employee_id                bigint      NOT NULL,
    clock_in                   timestamptz NOT NULL,
    clock_out                  timestamptz,            -- NULL while on shift
    site_code                  text,                   -- NULL when the source names none
    business_date              date        NOT NULL,   -- local date of clock_in in the site's zone
    regular_rate               numeric     NOT NULL,
    regular_hours              numeric     NOT NULL,
    overtime_eligible          boolean     NOT NULL,
    overtime_rate              numeric     NOT NULL,
    overtime_hours             numeric     NOT NULL,
    was_modified               boolean     NOT NULL,
    modification_timestamp     timestamptz,
    was_created_in_back_office boolean     NOT NULL,
    raw                        jsonb       NOT NULL,
    first_seen_at              timestamptz NOT NULL DEFAULT now(),
    last_changed_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, employee_id, clock_in)
);
CREATE INDEX clock_entries_business_date ON sonnys.clock_entries (business_date);
CREATE INDEX clock_entries_site_clock_in ON sonnys.clock_entries (account, site_code, clock_in);

-- Recurring (membership) accounts as /recurring/account/list reports them.
CREATE TABLE sonnys.recurring_accounts (
    account           text        NOT NULL,
    id                text        NOT NULL,
    name              text,
    customer_id       text,
    sign_up_at        timestamptz,
    cancel_at         timestamptz,
    status            integer,
    status_name       text,
    billing_site_id   bigint,
    billing_site_code text,
    raw               jsonb       NOT NULL,
    first_seen_at     timestamptz NOT NULL DEFAULT now(),
    last_changed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, id)
);

-- Status changes as /recurring/account/status-list reports them: events,
-- identified by (account, when, into what).
CREATE TABLE sonnys.recurring_status_changes (
    account             text        NOT NULL,
    recurring_id        text        NOT NULL,
    status_at           timestamptz NOT NULL,
    new_status          text        NOT NULL,
    old_status          text,
    washbook_account_id text,
    employee_name       text,
    site_code           text,                   -- where the change happened
    raw                 jsonb       NOT NULL,
    first_seen_at       timestamptz NOT NULL DEFAULT now(),
    last_changed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, recurring_id, status_at, new_status)
);
CREATE INDEX recurring_status_changes_status_at ON sonnys.recurring_status_changes (account, status_at);

COMMENT ON TABLE sonnys.employees IS 'Employees as /employee lists them, per configured account.';
COMMENT ON TABLE sonnys.clock_entries IS
    'Clock entries of /employee/{id}/clock-entries. Key (account, employee_id, clock_in); business_date is the local date of clock_in in the site''s zone.';
COMMENT ON TABLE sonnys.recurring_accounts IS 'Membership accounts as /recurring/account/list last reported them.';
COMMENT ON TABLE sonnys.recurring_status_changes IS 'Membership status changes of /recurring/account/status-list.';

-- ---------------------------------------------------------------------------
-- Labour

-- One rounding rule for every ratio of these views: 0 when the denominator is
-- not positive, else rounded to `places` decimal places (half away from zero).
CREATE FUNCTION reporting.ratio(numerator numeric, denominator numeric, places integer)
RETURNS numeric
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT round(CASE WHEN denominator > 0 THEN numerator / denominator ELSE 0 END, places)
$$;

COMMENT ON FUNCTION reporting.ratio(numeric, numeric, integer) IS
    'numerator / denominator rounded to `places` decimal places; 0 when the denominator is 0, negative or NULL.';

-- Labour and washes meet per site-day. A UNION ALL grouped by the key is a
-- full outer join (a day with washes and no clock entry, or the reverse,
-- appears with zeros on the missing side) through which a filter on
-- business_date, account or site_code still reaches both sources' indexes.
CREATE VIEW reporting.daily_site_labour AS
SELECT business_date,
       account,
       site_code,
       sum(regular_hours)                                    AS regular_hours,
       sum(overtime_hours)                                   AS overtime_hours,
       sum(regular_cost)                                     AS regular_cost,
       sum(overtime_cost)                                    AS overtime_cost,
       sum(regular_cost) + sum(overtime_cost)                AS labour_cost,
       sum(car_washes)::bigint                               AS car_washes,
       reporting.ratio(sum(regular_cost) + sum(overtime_cost), sum(car_washes), 2) AS cost_per_car,
       reporting.ratio(sum(regular_cost) + sum(overtime_cost), sum(total_sales), 6) AS labour_share,
       sum(total_sales)                                      AS total_sales,
       sum(clock_entries)::bigint                            AS clock_entries
  FROM (SELECT e.business_date, e.account, e.site_code,
               e.regular_hours, e.overtime_hours,
               e.regular_rate * e.regular_hours   AS regular_cost,
               e.overtime_rate * e.overtime_hours AS overtime_cost,
               0 AS car_washes, 0::numeric AS total_sales, 1 AS clock_entries
          FROM sonnys.clock_entries e
        UNION ALL
        -- total_washes of reporting.daily_site_kpis, from the rollup it reads
        -- (without its per-row lookup of the site name)
        SELECT r.business_date, r.account, r.site_code,
               0, 0, 0, 0,
               r.member_washes + r.retail_washes + r.plan_sale_washes, r.total_sales, 0
          FROM reporting.daily_site_rollup r) u
 GROUP BY business_date, account, site_code;

CREATE VIEW reporting.daily_account_labour AS
SELECT business_date,
       account,
       sum(regular_hours)          AS regular_hours,
       sum(overtime_hours)         AS overtime_hours,
       sum(regular_cost)           AS regular_cost,
       sum(overtime_cost)          AS overtime_cost,
       sum(labour_cost)            AS labour_cost,
       sum(car_washes)::bigint     AS car_washes,
       reporting.ratio(sum(labour_cost), sum(car_washes), 2)  AS cost_per_car,
       reporting.ratio(sum(labour_cost), sum(total_sales), 6) AS labour_share,
       sum(total_sales)            AS total_sales,
       sum(clock_entries)::bigint  AS clock_entries
  FROM reporting.daily_site_labour
 GROUP BY business_date, account;

CREATE VIEW reporting.daily_labour AS
SELECT business_date,
       sum(regular_hours)          AS regular_hours,
       sum(overtime_hours)         AS overtime_hours,
       sum(regular_cost)           AS regular_cost,
       sum(overtime_cost)          AS overtime_cost,
       sum(labour_cost)            AS labour_cost,
       sum(car_washes)::bigint     AS car_washes,
       reporting.ratio(sum(labour_cost), sum(car_washes), 2)  AS cost_per_car,
       reporting.ratio(sum(labour_cost), sum(total_sales), 6) AS labour_share,
       sum(total_sales)            AS total_sales,
       sum(clock_entries)::bigint  AS clock_entries
  FROM reporting.daily_site_labour
 GROUP BY business_date;

COMMENT ON VIEW reporting.daily_site_labour IS
    'Labour per site and business day, beside the day''s washes and sales: every site-day with a clock entry or a counted transaction (zeros on the missing side).';
COMMENT ON VIEW reporting.daily_account_labour IS
    'Labour per account and business day: site figures summed, cost_per_car and labour_share recomputed from the sums.';
COMMENT ON VIEW reporting.daily_labour IS
    'Labour per business day for the whole chain: sums, cost_per_car and labour_share recomputed from the sums.';

DO $$
DECLARE
    v text;
    c record;
BEGIN
    FOREACH v IN ARRAY ARRAY['daily_site_labour', 'daily_account_labour', 'daily_labour'] LOOP
        FOR c IN
            SELECT * FROM (VALUES
                ('business_date',  'Business day: the local date of clock_in in the site''s zone (a shift over midnight belongs to its clock-in day).'),
                ('account',        'Configured account.'),
                ('site_code',      'Site code of the clock entries and transactions (NULL: clock entries that name no site).'),
                ('regular_hours',  'Sum of regular_hours of the clock entries.'),
                ('overtime_hours', 'Sum of overtime_hours of the clock entries.'),
                ('regular_cost',   'Sum of regular_rate × regular_hours, exact.'),
                ('overtime_cost',  'Sum of overtime_rate × overtime_hours, exact.'),
                ('labour_cost',    'regular_cost + overtime_cost.'),
                ('car_washes',     'total_washes of reporting.daily_site_kpis (member + retail + plan-sale washes).'),
                ('cost_per_car',   'labour_cost / car_washes from the sums, rounded to the cent; 0 when there is no wash.'),
                ('labour_share',   'labour_cost / total_sales from the sums, 6 decimal places; 0 when total_sales is 0 or negative.'),
                ('total_sales',    'total_sales of reporting.daily_site_kpis.'),
                ('clock_entries',  'Clock entries counted.')
            ) AS d(col, doc)
            WHERE EXISTS (SELECT 1 FROM information_schema.columns
                           WHERE table_schema = 'reporting' AND table_name = v AND column_name = d.col)
        LOOP
            EXECUTE format('COMMENT ON COLUMN reporting.%I.%I IS %L', v, c.col, c.doc);
        END LOOP;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Members
--
-- An account's status at a moment is the new_status of its latest change at
-- or before it; before its first change, that change's old_status; with no
-- change recorded, its current status_name. Either way only from sign-up on
-- (from the first change when the sign-up date is unknown). Days are local
-- days of the billing site's zone, and "active on day D" means active at the
-- end of D, i.e. after every change of that local day.
--
-- Evaluating that per day and per account would cost days × members. Instead
-- every account contributes events: at sign-up +1 if its status then is
-- Active, at each change +1 or −1 if it enters or leaves Active (the status
-- before a change is the previous change's new_status: LAG), and a running
-- sum over the days gives the active count. The other figures are counts of
-- the day's events. Measured in docs/schema.md.

CREATE VIEW reporting.daily_site_members AS
WITH site_zone AS (
    SELECT DISTINCT ON (account, code) account, code, effective_timezone
      FROM sonnys.sites
     ORDER BY account, code, updated_at DESC
), change AS (
    -- Changes at the same instant are ordered by new_status so the view is
    -- deterministic; the source gives no better order.
    SELECT c.account, c.recurring_id, c.status_at, c.old_status, c.new_status,
           lag(c.new_status) OVER w AS previous_status,
           row_number() OVER w      AS n
      FROM sonnys.recurring_status_changes c
    WINDOW w AS (PARTITION BY c.account, c.recurring_id ORDER BY c.status_at, c.new_status)
), history AS (
    -- One row per change (or one per account without changes), twice for an
    -- account's first change or none: part 0 is its sign-up, part 1 the change.
    SELECT a.account, a.billing_site_code AS site_code, a.sign_up_at, a.status_name,
           -- a billing site not in the site list has no known zone: UTC, as in sync_health
           coalesce(z.effective_timezone, 'UTC') AS tz,
           c.n, c.status_at, c.old_status, c.new_status, c.previous_status, p.part
      FROM sonnys.recurring_accounts a
      LEFT JOIN site_zone z ON z.account = a.account AND z.code = a.billing_site_code
      LEFT JOIN change c ON c.account = a.account AND c.recurring_id = a.id
      JOIN (VALUES (0), (1)) AS p(part)
        ON p.part BETWEEN (CASE WHEN coalesce(c.n, 1) = 1 THEN 0 ELSE 1 END)
                      AND (CASE WHEN c.n IS NULL THEN 0 ELSE 1 END)
     WHERE p.part = 1 OR a.sign_up_at IS NOT NULL
), event AS (
    -- Grouped and sorted in the "C" collation: byte order is all grouping
    -- needs, and several times faster than the database's locale.
    SELECT account COLLATE "C" AS account,
           site_code COLLATE "C" AS site_code,
           -- A change dated before the sign-up counts on the sign-up day.
           (CASE WHEN part = 0 THEN sign_up_at ELSE greatest(status_at, sign_up_at) END AT TIME ZONE tz)::date AS day,
           CASE WHEN part = 0 THEN (coalesce(old_status, status_name) = 'Active')::int
                WHEN n > 1 THEN (new_status = 'Active')::int - (previous_status = 'Active')::int
                WHEN sign_up_at IS NOT NULL THEN (new_status = 'Active')::int - (old_status IS NOT DISTINCT FROM 'Active')::int
                ELSE (new_status = 'Active')::int
           END AS active,
           (part = 0)::int AS new_members,
           -- Entering a group from outside it counts once: Cancelled → Expired
           -- is not a second cancellation, Declined → Payment Retries Exceeded
           -- not a second failure.
           (part = 1 AND new_status IN ('Cancelled', 'Expired')
              AND coalesce(old_status, '') NOT IN ('Cancelled', 'Expired'))::int AS cancellations,
           (part = 1 AND new_status IN ('Payment Failed', 'Declined', 'Payment CC Expired', 'Payment Retries Exceeded')
              AND coalesce(old_status, '') NOT IN ('Payment Failed', 'Declined', 'Payment CC Expired', 'Payment Retries Exceeded'))::int
                                                                                        AS payment_failures,
           (part = 1 AND new_status = 'Active' AND old_status IS NOT NULL AND old_status <> 'Active')::int AS reactivations
      FROM history
    -- A fence: the figures are computed before grouping, so the planner
    -- groups narrow rows by hashing instead of sorting wide ones on disk
    -- (three times faster on a million events).
    OFFSET 0
), per_day AS (
    SELECT account, site_code, day,
           sum(active) AS active, sum(new_members) AS new_members, sum(cancellations) AS cancellations,
           sum(payment_failures) AS payment_failures, sum(reactivations) AS reactivations
      FROM event
     GROUP BY account, site_code, day
), daily AS (
    -- Zero rows give every site a row for each day from its first event to
    -- the chain's last; grouping merges them with the days that have events
    -- (a UNION rather than a join, so a NULL site code groups like any other).
    SELECT account, site_code, day,
           sum(active) AS active, sum(new_members) AS new_members, sum(cancellations) AS cancellations,
           sum(payment_failures) AS payment_failures, sum(reactivations) AS reactivations
      FROM (SELECT * FROM per_day
            UNION ALL
            SELECT s.account, s.site_code, g.day::date, 0, 0, 0, 0, 0
              FROM (SELECT account, site_code, min(day) AS first_day FROM per_day GROUP BY account, site_code) s
             CROSS JOIN (SELECT max(day) AS day FROM per_day) l
             CROSS JOIN generate_series(s.first_day, l.day, interval '1 day') AS g(day)) e
     GROUP BY account, site_code, day
)
SELECT day                                                                     AS business_date,
       account COLLATE "default"                                              AS account,
       site_code COLLATE "default"                                            AS site_code,
       sum(active) OVER (PARTITION BY account, site_code ORDER BY day)::bigint AS active_members,
       new_members::bigint                                                     AS new_members,
       cancellations::bigint                                                   AS cancellations,
       payment_failures::bigint                                                AS payment_failures,
       reactivations::bigint                                                   AS reactivations
  FROM daily;

CREATE VIEW reporting.daily_account_members AS
SELECT business_date,
       account,
       sum(active_members)::bigint   AS active_members,
       sum(new_members)::bigint      AS new_members,
       sum(cancellations)::bigint    AS cancellations,
       sum(payment_failures)::bigint AS payment_failures,
       sum(reactivations)::bigint    AS reactivations
  FROM reporting.daily_site_members
 GROUP BY business_date, account;

CREATE VIEW reporting.daily_members AS
SELECT business_date,
       sum(active_members)::bigint   AS active_members,
       sum(new_members)::bigint      AS new_members,
       sum(cancellations)::bigint    AS cancellations,
       sum(payment_failures)::bigint AS payment_failures,
       sum(reactivations)::bigint    AS reactivations
  FROM reporting.daily_site_members
 GROUP BY business_date;

-- A month starts with the members active at the end of the previous month
-- (every site has a row for each day from its first, so the previous month
-- is there unless this is the site's first) and ends with those active on
-- its last day with data.
CREATE VIEW reporting.monthly_site_members AS
SELECT month,
       account,
       site_code,
       coalesce(lag(active_at_end) OVER (PARTITION BY account, site_code ORDER BY month), 0)::bigint
                                                       AS active_at_start,
       active_at_end::bigint                           AS active_at_end,
       new_members::bigint                             AS new_members,
       cancellations::bigint                           AS cancellations,
       reporting.ratio(cancellations,
                       coalesce(lag(active_at_end) OVER (PARTITION BY account, site_code ORDER BY month), 0),
                       6)                              AS churn_rate,
       payment_failures::bigint                        AS payment_failures,
       reactivations::bigint                           AS reactivations
  FROM (SELECT date_trunc('month', business_date)::date                       AS month,
               account,
               site_code,
               (array_agg(active_members ORDER BY business_date DESC))[1]      AS active_at_end,
               sum(new_members)                                                AS new_members,
               sum(cancellations)                                              AS cancellations,
               sum(payment_failures)                                           AS payment_failures,
               sum(reactivations)                                              AS reactivations
          FROM reporting.daily_site_members
         GROUP BY 1, 2, 3) m;

CREATE VIEW reporting.monthly_account_members AS
SELECT month,
       account,
       sum(active_at_start)::bigint  AS active_at_start,
       sum(active_at_end)::bigint    AS active_at_end,
       sum(new_members)::bigint      AS new_members,
       sum(cancellations)::bigint    AS cancellations,
       reporting.ratio(sum(cancellations), sum(active_at_start), 6) AS churn_rate,
       sum(payment_failures)::bigint AS payment_failures,
       sum(reactivations)::bigint    AS reactivations
  FROM reporting.monthly_site_members
 GROUP BY month, account;

CREATE VIEW reporting.monthly_members AS
SELECT month,
       sum(active_at_start)::bigint  AS active_at_start,
       sum(active_at_end)::bigint    AS active_at_end,
       sum(new_members)::bigint      AS new_members,
       sum(cancellations)::bigint    AS cancellations,
       reporting.ratio(sum(cancellations), sum(active_at_start), 6) AS churn_rate,
       sum(payment_failures)::bigint AS payment_failures,
       sum(reactivations)::bigint    AS reactivations
  FROM reporting.monthly_site_members
 GROUP BY month;

COMMENT ON VIEW reporting.daily_site_members IS
    'Members per billing site and local day: one row for every day from the site''s first sign-up or status change to the chain''s latest, for every billing site with members. Computed from sonnys.recurring_accounts and sonnys.recurring_status_changes when read.';
COMMENT ON VIEW reporting.daily_account_members IS 'Members per account and day: daily_site_members summed over the account''s billing sites.';
COMMENT ON VIEW reporting.daily_members IS 'Members per day for the whole chain: daily_site_members summed.';
COMMENT ON VIEW reporting.monthly_site_members IS
    'Members per billing site and calendar month (of the site''s local days): members at the start and end, sign-ups, cancellations and churn.';
COMMENT ON VIEW reporting.monthly_account_members IS 'monthly_site_members summed per account; churn_rate recomputed from the sums.';
COMMENT ON VIEW reporting.monthly_members IS 'monthly_site_members summed for the whole chain; churn_rate recomputed from the sums.';

DO $$
DECLARE
    v text;
    c record;
BEGIN
    FOREACH v IN ARRAY ARRAY['daily_site_members', 'daily_account_members', 'daily_members',
                             'monthly_site_members', 'monthly_account_members', 'monthly_members'] LOOP
        FOR c IN
            SELECT * FROM (VALUES
                ('business_date',    'Local day of the billing site''s zone (UTC when the billing site is not in the site list).'),
                ('month',            'First day of the calendar month of the local days counted.'),
                ('account',          'Configured account.'),
                ('site_code',        'The members'' billing site (billing_site_code).'),
                ('active_members',   'Members whose status at the end of the day is Active.'),
                ('active_at_start',  'Members active at the end of the previous month (0 in a site''s first month).'),
                ('active_at_end',    'Members active at the end of the month''s last day with data.'),
                ('new_members',      'Sign-ups (sign_up_at) on the day or in the month.'),
                ('cancellations',    'Status changes into Cancelled or Expired from any other status.'),
                ('payment_failures', 'Status changes into Payment Failed, Declined, Payment CC Expired or Payment Retries Exceeded from any status outside that group.'),
                ('reactivations',    'Status changes into Active from another recorded status (a recovered payment included).'),
                ('churn_rate',       'cancellations / active_at_start from the sums, 6 decimal places; 0 when active_at_start is 0.')
            ) AS d(col, doc)
            WHERE EXISTS (SELECT 1 FROM information_schema.columns
                           WHERE table_schema = 'reporting' AND table_name = v AND column_name = d.col)
        LOOP
            EXECUTE format('COMMENT ON COLUMN reporting.%I.%I IS %L', v, c.col, c.doc);
        END LOOP;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Freshness of the new data, added at the end of sync_health (columns are
-- only ever added at the end; the others are as in 0004).
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
                                  AND coalesce(sd.heartbeat_at, sd.started_at, '-infinity') >= now() - interval '2 minutes')::integer AS running_days,
               count(*) FILTER (WHERE sd.status = 'running'
                                  AND coalesce(sd.heartbeat_at, sd.started_at, '-infinity') < now() - interval '2 minutes')::integer     AS stale_days,
               coalesce(sum(sd.rejected) FILTER (WHERE sd.status = 'done'), 0)::integer              AS rejected_records
          FROM sonnys.sync_days sd
         WHERE sd.account = k.account AND sd.site_code = k.site_code) d;

COMMENT ON COLUMN reporting.sync_health.last_clock_in_at IS 'Latest clock-in stored for this site; NULL if none.';
COMMENT ON COLUMN reporting.sync_health.last_status_change_at IS
    'Latest membership status change stored for the account (status changes are exported per account, not per site); NULL if none.';

-- The read-only role reads the new views too. Default privileges (0002) grant
-- them when the same user migrates; said explicitly in case another does.
GRANT SELECT ON reporting.daily_site_labour, reporting.daily_account_labour, reporting.daily_labour,
                reporting.daily_site_members, reporting.daily_account_members, reporting.daily_members,
                reporting.monthly_site_members, reporting.monthly_account_members, reporting.monthly_members,
                reporting.sync_health
   TO sonnys_reader;
