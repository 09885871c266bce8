-- Members at chain scale: a stored daily rollup per (account, billing site,
-- local day), kept current by the members export, so the member views read a
-- few thousand stored rows instead of every account's whole history (4-6 s
-- at 300,000 members before; see docs/benchmarks.md). The views keep their
-- names, columns and figures. Names are relied on by dashboards: add, never
-- rename.
--
-- One definition of a member's events (reporting.member_events) serves both
-- ways of filling the rollup: from scratch (reporting.members_from_scratch,
-- the computation the views did until now) and site by site from a day on
-- (reporting.refresh_member_sites, what the export calls).

-- Recurring accounts by sign-up, for the sign-ups of the days a refresh
-- recomputes.
CREATE INDEX recurring_accounts_sign_up ON sonnys.recurring_accounts (account, sign_up_at);

-- The events of an account's members (all of them when p_ids is NULL; every
-- account when p_account is NULL too): at sign-up +1 active if the status
-- then is Active; at each change +1 or −1 as the member enters or leaves
-- Active (the status before a change is the previous change's new_status),
-- plus the day's sign-ups, cancellations, payment failures and
-- reactivations. Each event is dated on the local day of the billing
-- site's zone. The rules are in docs/schema.md ("Membership definitions").
CREATE FUNCTION reporting.member_events(p_account text, p_ids text[])
RETURNS TABLE (account text, site_code text, time_zone text, business_date date, active integer,
               new_members integer, cancellations integer, payment_failures integer, reactivations integer)
LANGUAGE sql
STABLE
AS $$
WITH site_zone AS (
    SELECT DISTINCT ON (s.account, s.code) s.account, s.code, s.effective_timezone
      FROM sonnys.sites s
     WHERE p_account IS NULL OR s.account = p_account
     ORDER BY s.account, s.code, s.updated_at DESC, s.site_id DESC
), change AS (
    -- Changes at the same instant are ordered by new_status so the figures
    -- are deterministic; the source gives no better order.
    SELECT c.account, c.recurring_id, c.status_at, c.old_status, c.new_status,
           lag(c.new_status) OVER w AS previous_status,
           row_number() OVER w      AS n
      FROM sonnys.recurring_status_changes c
     WHERE (p_account IS NULL OR c.account = p_account)
       AND (p_ids IS NULL OR c.recurring_id = ANY (p_ids))
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
     WHERE (p_account IS NULL OR a.account = p_account)
       AND (p_ids IS NULL OR a.id = ANY (p_ids))
       AND (p.part = 1 OR a.sign_up_at IS NOT NULL)
)
SELECT account,
       site_code,
       tz,
       -- A change dated before the sign-up counts on the sign-up day.
       (CASE WHEN part = 0 THEN sign_up_at ELSE greatest(status_at, sign_up_at) END AT TIME ZONE tz)::date,
       CASE WHEN part = 0 THEN (coalesce(old_status, status_name) = 'Active')::int
            WHEN n > 1 THEN (new_status = 'Active')::int - (previous_status = 'Active')::int
            WHEN sign_up_at IS NOT NULL THEN (new_status = 'Active')::int - (old_status IS NOT DISTINCT FROM 'Active')::int
            ELSE (new_status = 'Active')::int
       END,
       (part = 0)::int,
       -- Entering a group from outside it counts once: Cancelled → Expired
       -- is not a second cancellation, Declined → Payment Retries Exceeded
       -- not a second failure.
       (part = 1 AND new_status IN ('Cancelled', 'Expired')
          AND coalesce(old_status, '') NOT IN ('Cancelled', 'Expired'))::int,
       (part = 1 AND new_status IN ('Payment Failed', 'Declined', 'Payment CC Expired', 'Payment Retries Exceeded')
          AND coalesce(old_status, '') NOT IN ('Payment Failed', 'Declined', 'Payment CC Expired', 'Payment Retries Exceeded'))::int,
       (part = 1 AND new_status = 'Active' AND old_status IS NOT NULL AND old_status <> 'Active')::int
  FROM history
-- A fence: the figures are computed before the caller groups them, so the
-- planner groups narrow rows by hashing instead of sorting wide ones on disk
-- (three times faster on a million events).
OFFSET 0
$$;

COMMENT ON FUNCTION reporting.member_events(text, text[]) IS
    'Membership events of the members p_ids of account p_account (all members when p_ids is NULL; all accounts when p_account is NULL too), one row per sign-up or status change, dated on the local day of the billing site''s zone: active is +1/-1/0 as the member enters or leaves Active; the other columns count the event.';

-- The member figures of every billing site and day, computed from the whole
-- history: the events summed per site and local day, zero rows filling every
-- site's days from its first event to the chain's last, and a running sum
-- for the active count. This is what the views computed on every read until
-- the rollup; it now fills the rollup from scratch, and tests compare the
-- rollup the export keeps with it.
CREATE FUNCTION reporting.members_from_scratch()
RETURNS TABLE (business_date date, account text, site_code text, active_members bigint, new_members bigint,
               cancellations bigint, payment_failures bigint, reactivations bigint, events bigint, time_zone text)
LANGUAGE sql
STABLE
AS $$
WITH per_day AS (
    -- Grouped and sorted in the "C" collation: byte order is all grouping
    -- needs, and several times faster than the database's locale.
    SELECT e.account COLLATE "C" AS account, e.site_code COLLATE "C" AS site_code, e.business_date AS day,
           min(e.time_zone) AS time_zone,
           sum(e.active) AS active, sum(e.new_members) AS new_members, sum(e.cancellations) AS cancellations,
           sum(e.payment_failures) AS payment_failures, sum(e.reactivations) AS reactivations,
           count(*) AS events
      FROM reporting.member_events(NULL, NULL) e
     GROUP BY 1, 2, 3
), daily AS (
    -- Zero rows give every site a row for each day from its first event to
    -- the chain's last; grouping merges them with the days that have events
    -- (a UNION rather than a join, so a NULL site code groups like any other).
    SELECT account, site_code, day, min(time_zone) AS time_zone,
           sum(active) AS active, sum(new_members) AS new_members, sum(cancellations) AS cancellations,
           sum(payment_failures) AS payment_failures, sum(reactivations) AS reactivations,
           sum(events) AS events
      FROM (SELECT * FROM per_day
            UNION ALL
            SELECT s.account, s.site_code, g.day::date, s.time_zone, 0, 0, 0, 0, 0, 0
              FROM (SELECT account, site_code, min(day) AS first_day, min(time_zone) AS time_zone
                      FROM per_day GROUP BY account, site_code) s
             CROSS JOIN (SELECT max(day) AS day FROM per_day) l
             CROSS JOIN generate_series(s.first_day, l.day, interval '1 day') AS g(day)) e
     GROUP BY account, site_code, day
)
SELECT day,
       account COLLATE "default",
       site_code COLLATE "default",
       sum(active) OVER (PARTITION BY account, site_code ORDER BY day)::bigint,
       new_members::bigint,
       cancellations::bigint,
       payment_failures::bigint,
       reactivations::bigint,
       events::bigint,
       time_zone
  FROM daily
$$;

COMMENT ON FUNCTION reporting.members_from_scratch() IS
    'The rows of reporting.daily_site_member_rollup computed from the whole membership history (what the member views computed on every read before the rollup): slow at volume, for a rebuild (reporting.refresh_members()) or a check.';

-- The stored rollup: one row per billing site with members and local day,
-- from the site's first event to the chain's last day with an event, like
-- the view it replaces. A NULL site code (members without a billing site)
-- is a site like any other, hence no primary key: the refresh functions
-- replace a site's days as a whole, and the key's index is on expressions
-- that tell NULL from every code.
CREATE TABLE reporting.daily_site_member_rollup (
    account          text        NOT NULL,
    site_code        text,
    business_date    date        NOT NULL,
    active_members   integer     NOT NULL,
    new_members      integer     NOT NULL,
    cancellations    integer     NOT NULL,
    payment_failures integer     NOT NULL,
    reactivations    integer     NOT NULL,
    events           integer     NOT NULL,
    time_zone        text        NOT NULL,
    refreshed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX daily_site_member_rollup_site
    ON reporting.daily_site_member_rollup (account, coalesce(site_code, ''), (site_code IS NULL), business_date);
CREATE INDEX daily_site_member_rollup_business_date ON reporting.daily_site_member_rollup (business_date);
-- The month of monthly_site_members, so a filter on it reads only that month.
CREATE INDEX daily_site_member_rollup_month
    ON reporting.daily_site_member_rollup ((date_trunc('month', business_date::timestamp)::date));

COMMENT ON TABLE reporting.daily_site_member_rollup IS
    'Member figures per (account, billing site, local day), stored: every day from the site''s first sign-up or status change to the chain''s latest. Kept current by the members export (reporting.refresh_member_sites); rebuilt by reporting.refresh_members() and reporting.refresh_all(). Read reporting.daily_site_members instead.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.account IS 'Configured account.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.site_code IS 'The members'' billing site (billing_site_code); NULL for members without one.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.business_date IS 'Local day of the billing site''s zone.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.active_members IS 'Members whose status at the end of the day is Active.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.new_members IS 'Sign-ups on the day.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.cancellations IS 'Status changes into Cancelled or Expired from any other status.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.payment_failures IS 'Status changes into a payment failure status from any status outside that group.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.reactivations IS 'Status changes into Active from another recorded status.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.events IS 'Sign-ups and status changes dated on the day; 0 on a day that only carries the members over.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.time_zone IS 'The zone the site''s days were computed in (its effective_timezone, UTC when it is not in the site list); a refresh recomputes a site whose zone has changed since.';
COMMENT ON COLUMN reporting.daily_site_member_rollup.refreshed_at IS 'When this row was last computed.';

-- Recomputes the rollup of the billing sites p_site_codes[i] of account
-- p_account for every local day from the day of p_since[i] on (the whole
-- history when p_since[i] is NULL), keeping each site's days before it: the
-- members active at the end of the day before carry over. Only the members
-- with an event on the recomputed days are read. Every site of the chain
-- then ends on the chain's new last day. The members export calls it in the
-- same transaction as the records it writes, with, for each member it
-- added or changed, the member's billing site (old and new) and the
-- earliest of its sign-up and first change.
CREATE FUNCTION reporting.refresh_member_sites(p_account text, p_site_codes text[], p_since timestamptz[])
RETURNS integer
LANGUAGE plpgsql
-- The statements are planned for the arrays at hand (their NULL tests fold).
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_sites text[];
    v_zones text[];
    v_from  date[];
    v_bound timestamptz;
    v_ids   text[];
    -- the recomputed days' sums, one element per (site, day)
    v_d_site text[];
    v_d_day date[];
    v_d_active integer[];
    v_d_new integer[];
    v_d_cancelled integer[];
    v_d_failed integer[];
    v_d_reactivated integer[];
    v_d_events integer[];
    -- per recomputed site (as v_sites): its last kept row
    v_prior_day date[];
    v_prior_active integer[];
    v_old_last date;
    v_new_last date;
    n integer;
    written integer;
BEGIN
    IF p_account IS NULL THEN
        RAISE EXCEPTION 'reporting.refresh_member_sites: p_account must not be NULL';
    END IF;
    IF coalesce(cardinality(p_site_codes), 0) <> coalesce(cardinality(p_since), 0) THEN
        RAISE EXCEPTION 'reporting.refresh_member_sites: % site codes but % times (parallel arrays must have equal length)',
            coalesce(cardinality(p_site_codes), 0), coalesce(cardinality(p_since), 0);
    END IF;
    IF coalesce(cardinality(p_site_codes), 0) = 0 THEN
        RETURN 0;
    END IF;

    -- One refresh at a time: every site ends on the chain's last day, which
    -- any refresh may move. Each statement below runs after the lock, so it
    -- sees what the refresh before committed.
    PERFORM pg_advisory_xact_lock(hashtext('reporting.daily_site_member_rollup'));

    -- The sites to recompute, each in its zone from its first day on; a site
    -- of the account whose stored days were computed in another zone than
    -- its current one is recomputed whole.
    SELECT array_agg(t.site_code), array_agg(t.tz), array_agg(t.from_day)
      INTO v_sites, v_zones, v_from
      FROM (SELECT u.site_code, z.tz,
                   CASE WHEN bool_or(u.since IS NULL) THEN NULL
                        ELSE min((u.since AT TIME ZONE z.tz)::date) END AS from_day
              FROM (SELECT * FROM unnest(p_site_codes, p_since) AS u(site_code, since)
                    UNION ALL
                    SELECT r.site_code, NULL
                      FROM reporting.daily_site_member_rollup r
                     WHERE r.account = p_account
                       AND r.business_date = (SELECT max(business_date) FROM reporting.daily_site_member_rollup)
                       AND r.time_zone IS DISTINCT FROM
                           coalesce((SELECT s.effective_timezone FROM sonnys.sites s
                                      WHERE s.account = p_account AND s.code = r.site_code
                                      ORDER BY s.updated_at DESC, s.site_id DESC LIMIT 1), 'UTC')) u
             CROSS JOIN LATERAL (
                    SELECT coalesce((SELECT s.effective_timezone FROM sonnys.sites s
                                      WHERE s.account = p_account AND s.code = u.site_code
                                      ORDER BY s.updated_at DESC, s.site_id DESC LIMIT 1), 'UTC') AS tz) z
             GROUP BY u.site_code, z.tz) t;

    -- The members with an event on a recomputed day: every member of a site
    -- recomputed whole; else those signed up, or with a change, from a day
    -- before the earliest first day (a day's margin covers every zone).
    v_bound := (SELECT min(f) FROM unnest(v_from) AS f)::timestamp AT TIME ZONE 'UTC' - interval '1 day';
    SELECT array_agg(DISTINCT m.id)
      INTO v_ids
      FROM (SELECT a.id
              FROM sonnys.recurring_accounts a
              JOIN unnest(v_sites, v_from) AS t(site_code, from_day)
                ON coalesce(t.site_code, '') = coalesce(a.billing_site_code, '')
               AND (t.site_code IS NULL) = (a.billing_site_code IS NULL)
             WHERE a.account = p_account AND t.from_day IS NULL
            UNION ALL
            SELECT a.id FROM sonnys.recurring_accounts a
             WHERE a.account = p_account AND a.sign_up_at >= v_bound
            UNION ALL
            SELECT c.recurring_id FROM sonnys.recurring_status_changes c
             WHERE c.account = p_account AND c.status_at >= v_bound) m;

    -- The day sums of the recomputed days, per site.
    SELECT array_agg(d.site_code), array_agg(d.business_date), array_agg(d.active),
           array_agg(d.new_members), array_agg(d.cancellations), array_agg(d.payment_failures),
           array_agg(d.reactivations), array_agg(d.events)
      INTO v_d_site, v_d_day, v_d_active, v_d_new, v_d_cancelled, v_d_failed, v_d_reactivated, v_d_events
      FROM (SELECT e.site_code, e.business_date,
                   sum(e.active)::integer AS active, sum(e.new_members)::integer AS new_members,
                   sum(e.cancellations)::integer AS cancellations,
                   sum(e.payment_failures)::integer AS payment_failures,
                   sum(e.reactivations)::integer AS reactivations, count(*)::integer AS events
              FROM reporting.member_events(p_account, coalesce(v_ids, '{}')) e
              JOIN unnest(v_sites, v_from) AS t(site_code, from_day)
                ON coalesce(t.site_code, '') = coalesce(e.site_code, '')
               AND (t.site_code IS NULL) = (e.site_code IS NULL)
             WHERE t.from_day IS NULL OR e.business_date >= t.from_day
             GROUP BY e.site_code, e.business_date) d;

    -- Each site's last kept row: the day before its first recomputed day
    -- (or the chain's last day, when that is earlier); none when the site
    -- is recomputed whole or has no earlier row.
    SELECT array_agg(p.business_date ORDER BY t.i), array_agg(p.active_members ORDER BY t.i)
      INTO v_prior_day, v_prior_active
      FROM unnest(v_sites, v_from) WITH ORDINALITY AS t(site_code, from_day, i)
      LEFT JOIN LATERAL (
            SELECT r.business_date, r.active_members
              FROM reporting.daily_site_member_rollup r
             WHERE r.account = p_account
               AND coalesce(r.site_code, '') = coalesce(t.site_code, '')
               AND (r.site_code IS NULL) = (t.site_code IS NULL)
               AND r.business_date < t.from_day
             ORDER BY r.business_date DESC
             LIMIT 1) p ON true;

    -- The chain's last day: the latest day with an event, among the rows
    -- kept and the days recomputed.
    v_old_last := (SELECT max(business_date) FROM reporting.daily_site_member_rollup);
    v_new_last := greatest(
        (SELECT r.business_date
           FROM reporting.daily_site_member_rollup r
          WHERE r.events > 0
            AND NOT EXISTS (SELECT 1 FROM unnest(v_sites, v_prior_day) AS t(site_code, prior_day)
                             WHERE r.account = p_account
                               AND coalesce(r.site_code, '') = coalesce(t.site_code, '')
                               AND (r.site_code IS NULL) = (t.site_code IS NULL)
                               AND r.business_date > coalesce(t.prior_day, '-infinity'))
          ORDER BY r.business_date DESC
          LIMIT 1),
        (SELECT max(d) FROM unnest(v_d_day) AS d));

    -- The recomputed sites lose the rows after their last kept one, every
    -- site the rows after the chain's new last day.
    DELETE FROM reporting.daily_site_member_rollup r
     USING unnest(v_sites, v_prior_day) AS t(site_code, prior_day)
     WHERE r.account = p_account
       AND coalesce(r.site_code, '') = coalesce(t.site_code, '')
       AND (r.site_code IS NULL) = (t.site_code IS NULL)
       AND r.business_date > coalesce(t.prior_day, '-infinity');
    GET DIAGNOSTICS n = ROW_COUNT;
    written := n;
    DELETE FROM reporting.daily_site_member_rollup r
     WHERE r.business_date > v_new_last OR v_new_last IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    written := written + n;

    -- The recomputed days of each site: after its last kept row (or from its
    -- first event) to the chain's last day, the active count carried over.
    INSERT INTO reporting.daily_site_member_rollup
           (account, site_code, business_date, active_members, new_members, cancellations,
            payment_failures, reactivations, events, time_zone)
    SELECT p_account, t.site_code, g.day::date,
           coalesce(t.prior_active, 0)
             + sum(coalesce(d.active, 0)) OVER (PARTITION BY t.i ORDER BY g.day),
           coalesce(d.new_members, 0), coalesce(d.cancellations, 0), coalesce(d.payment_failures, 0),
           coalesce(d.reactivations, 0), coalesce(d.events, 0), t.tz
      FROM unnest(v_sites, v_zones, v_prior_day, v_prior_active)
           WITH ORDINALITY AS t(site_code, tz, prior_day, prior_active, i)
     CROSS JOIN LATERAL generate_series(
               coalesce(t.prior_day + 1,
                        (SELECT min(d.business_date)
                           FROM unnest(v_d_site, v_d_day) AS d(site_code, business_date)
                          WHERE coalesce(d.site_code, '') = coalesce(t.site_code, '')
                            AND (d.site_code IS NULL) = (t.site_code IS NULL))),
               v_new_last, interval '1 day') AS g(day)
      LEFT JOIN unnest(v_d_site, v_d_day, v_d_active, v_d_new, v_d_cancelled, v_d_failed,
                       v_d_reactivated, v_d_events)
                AS d(site_code, business_date, active, new_members, cancellations, payment_failures,
                     reactivations, events)
        ON coalesce(d.site_code, '') = coalesce(t.site_code, '')
       AND (d.site_code IS NULL) = (t.site_code IS NULL)
       AND d.business_date = g.day;
    GET DIAGNOSTICS n = ROW_COUNT;
    written := written + n;

    -- Every other site carries its members over to the chain's new last day.
    IF v_new_last > v_old_last THEN
        INSERT INTO reporting.daily_site_member_rollup
               (account, site_code, business_date, active_members, new_members, cancellations,
                payment_failures, reactivations, events, time_zone)
        SELECT r.account, r.site_code, g.day::date, r.active_members, 0, 0, 0, 0, 0, r.time_zone
          FROM reporting.daily_site_member_rollup r
         CROSS JOIN LATERAL generate_series(v_old_last + 1, v_new_last, interval '1 day') AS g(day)
         WHERE r.business_date = v_old_last
           AND NOT (r.account = p_account
                    AND EXISTS (SELECT 1 FROM unnest(v_sites) AS t(site_code)
                                 WHERE coalesce(r.site_code, '') = coalesce(t.site_code, '')
                                   AND (r.site_code IS NULL) = (t.site_code IS NULL)));
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
    END IF;
    RETURN written;
END
$$;

COMMENT ON FUNCTION reporting.refresh_member_sites(text, text[], timestamptz[]) IS
    'Recomputes reporting.daily_site_member_rollup for the billing sites p_site_codes[i] of account p_account from the local day of p_since[i] on (whole when NULL), reading only the members with an event on those days, and carries every other site to the chain''s new last day. Call in the same transaction as the writes it reflects. Returns the number of rollup rows written or deleted.';

-- Rebuilds the whole rollup from the whole history, for operators after a
-- manual data fix. Readers keep seeing the old rows until it commits.
CREATE FUNCTION reporting.refresh_members()
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    written integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('reporting.daily_site_member_rollup'));
    DELETE FROM reporting.daily_site_member_rollup;
    INSERT INTO reporting.daily_site_member_rollup
           (business_date, account, site_code, active_members, new_members, cancellations,
            payment_failures, reactivations, events, time_zone)
    SELECT * FROM reporting.members_from_scratch();
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

COMMENT ON FUNCTION reporting.refresh_members() IS
    'Rebuilds reporting.daily_site_member_rollup from scratch from sonnys.recurring_accounts and sonnys.recurring_status_changes (after a manual data fix, or a site''s zone change). Returns the number of rollup rows.';

-- refresh_all() rebuilds both rollups: the sales rollup as before (its
-- result is still the number of sales rollup rows), then the members'.
CREATE OR REPLACE FUNCTION reporting.refresh_all()
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    written integer;
BEGIN
    LOCK TABLE reporting.daily_site_rollup IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM reporting.daily_site_rollup;
    INSERT INTO reporting.daily_site_rollup
           (account, site_code, business_date, transactions, total_sales, membership_sales,
            member_washes, retail_washes, plan_sale_washes, free_washes, new_memberships)
    SELECT f.account, f.site_code, f.business_date,
           count(*),
           coalesce(sum(f.total) FILTER (WHERE NOT f.is_plan_redemption), 0),
           coalesce(sum(f.total) FILTER (WHERE f.is_plan_sale AND NOT f.is_plan_redemption), 0),
           count(*) FILTER (WHERE f.is_wash AND f.is_plan_redemption),
           count(*) FILTER (WHERE f.is_wash AND NOT f.is_plan_sale AND NOT f.is_plan_redemption),
           count(*) FILTER (WHERE f.is_wash AND f.is_plan_sale AND NOT f.is_plan_redemption),
           count(*) FILTER (WHERE f.is_wash AND NOT f.is_plan_sale AND NOT f.is_plan_redemption AND f.total = 0),
           count(*) FILTER (WHERE f.is_new_membership)
      FROM reporting.transaction_facts f
     GROUP BY f.account, f.site_code, f.business_date;
    GET DIAGNOSTICS written = ROW_COUNT;
    PERFORM reporting.refresh_members();
    RETURN written;
END
$$;

COMMENT ON FUNCTION reporting.refresh_all() IS
    'Rebuilds reporting.daily_site_rollup and reporting.daily_site_member_rollup from scratch from the base tables (after a manual data fix). Returns the number of sales rollup rows.';

REVOKE EXECUTE ON FUNCTION reporting.refresh_member_sites(text, text[], timestamptz[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION reporting.refresh_members() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION reporting.member_events(text, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION reporting.members_from_scratch() FROM PUBLIC;

-- The view keeps its name, columns and figures, and reads the rollup.
CREATE OR REPLACE VIEW reporting.daily_site_members AS
SELECT business_date,
       account,
       site_code,
       active_members::bigint   AS active_members,
       new_members::bigint      AS new_members,
       cancellations::bigint    AS cancellations,
       payment_failures::bigint AS payment_failures,
       reactivations::bigint    AS reactivations
  FROM reporting.daily_site_member_rollup;

COMMENT ON VIEW reporting.daily_site_members IS
    'Members per billing site and local day: one row for every day from the site''s first sign-up or status change to the chain''s latest, for every billing site with members. Read from reporting.daily_site_member_rollup, which the members export keeps current.';

-- A month's row reads the days it needs, not the site's whole history: rows
-- run without a gap from a site's first day to the chain's last, so the
-- members at the start of a month are those of the day before it (0 in the
-- site's first month), and those at its end are those of its last row. Same
-- columns and figures as before (0007), and a filter on month or account
-- now reaches the rollup.
CREATE OR REPLACE VIEW reporting.monthly_site_members AS
SELECT m.month,
       m.account,
       m.site_code,
       coalesce(s.active_members, 0)::bigint                               AS active_at_start,
       m.active_at_end::bigint                                             AS active_at_end,
       m.new_members::bigint                                               AS new_members,
       m.cancellations::bigint                                             AS cancellations,
       reporting.ratio(m.cancellations, coalesce(s.active_members, 0), 6)  AS churn_rate,
       m.payment_failures::bigint                                          AS payment_failures,
       m.reactivations::bigint                                             AS reactivations
  FROM (SELECT date_trunc('month', business_date::timestamp)::date AS month,
               account,
               site_code,
               (array_agg(active_members ORDER BY business_date DESC))[1] AS active_at_end,
               sum(new_members)      AS new_members,
               sum(cancellations)    AS cancellations,
               sum(payment_failures) AS payment_failures,
               sum(reactivations)    AS reactivations
          FROM reporting.daily_site_members
         GROUP BY 1, 2, 3) m
  -- one indexed lookup per month row
  LEFT JOIN LATERAL (
        SELECT d.active_members
          FROM reporting.daily_site_members d
         WHERE d.account = m.account
           AND coalesce(d.site_code, '') = coalesce(m.site_code, '') AND (d.site_code IS NULL) = (m.site_code IS NULL)
           AND d.business_date = m.month - 1
         LIMIT 1) s ON true;

-- Fill the rollup from the members stored before it existed.
SELECT reporting.refresh_members();

-- The read-only role reads the rollup like the views (default privileges of
-- 0002 grant it when the same user migrates; said explicitly in case another does).
GRANT SELECT ON reporting.daily_site_member_rollup TO sonnys_reader;
