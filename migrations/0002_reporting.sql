-- Consolidated reporting: the KPIs operators' dashboards read, across sites and
-- accounts. The names are relied on by dashboards: add, never rename.
--
-- Design (docs/schema.md, "Reporting rollup"): the per-transaction classification
-- lives in one view (reporting.transaction_facts); its additive daily sums are
-- kept in a rollup table, one row per (account, site, business day), maintained
-- by reporting.refresh_site_days() in the same database transaction as every
-- page of transactions the export writes. The daily_* views read the rollup, so
-- a month of a hundred sites is a few thousand rows whatever the volume.

CREATE SCHEMA IF NOT EXISTS reporting;
COMMENT ON SCHEMA reporting IS
    'Read-only KPI views over the sonnys schema, for dashboards and people. Granted to role sonnys_reader.';

-- Transactions with status Voided count nowhere; NULL flags are false.
CREATE VIEW reporting.transaction_facts AS
SELECT t.account,
       t.id                                            AS transaction_id,
       t.site_code,
       t.business_date,
       t.total,
       EXISTS (SELECT 1
                 FROM sonnys.transaction_items i
                WHERE i.account = t.account
                  AND i.transaction_id = t.id
                  AND lower(i.department) = 'wash'
                  AND i.is_voided IS NOT TRUE)         AS is_wash,
       coalesce(t.is_recurring_plan_sale, false)       AS is_plan_sale,
       coalesce(t.is_recurring_plan_redemption, false) AS is_plan_redemption,
       coalesce(t.is_recurring_plan_sale, false)
           AND coalesce(t.is_recurring_sale, false)    AS is_new_membership
  FROM sonnys.transactions t
 WHERE lower(coalesce(t.transaction_status, '')) <> 'voided';

COMMENT ON VIEW reporting.transaction_facts IS
    'Every transaction that counts in the KPIs (status not Voided), classified the way the KPIs use it. NULL flags read as false.';
COMMENT ON COLUMN reporting.transaction_facts.account IS 'Configured account the transaction belongs to.';
COMMENT ON COLUMN reporting.transaction_facts.transaction_id IS 'The source''s transaction id (sonnys.transactions.id).';
COMMENT ON COLUMN reporting.transaction_facts.site_code IS 'Site (location) code.';
COMMENT ON COLUMN reporting.transaction_facts.business_date IS 'Local calendar day of the site on which the transaction completed.';
COMMENT ON COLUMN reporting.transaction_facts.total IS 'Amount charged, with discounts and tax.';
COMMENT ON COLUMN reporting.transaction_facts.is_wash IS 'Wash transaction: at least one item not voided in department Wash (case-insensitive).';
COMMENT ON COLUMN reporting.transaction_facts.is_plan_sale IS 'Membership plan sale (is_recurring_plan_sale).';
COMMENT ON COLUMN reporting.transaction_facts.is_plan_redemption IS 'Membership redemption (is_recurring_plan_redemption): $0 usage, not a sale.';
COMMENT ON COLUMN reporting.transaction_facts.is_new_membership IS 'Genuine new sign-up: plan sale that is also a recurring sale (not an upgrade or switch).';

-- Additive figures of one site-day; everything the daily_* views show derives
-- from these columns.
CREATE TABLE reporting.daily_site_rollup (
    account          text        NOT NULL,
    site_code        text        NOT NULL,
    business_date    date        NOT NULL,
    transactions     integer     NOT NULL,
    total_sales      numeric     NOT NULL,
    membership_sales numeric     NOT NULL,
    member_washes    integer     NOT NULL,
    retail_washes    integer     NOT NULL,
    plan_sale_washes integer     NOT NULL,
    free_washes      integer     NOT NULL,
    new_memberships  integer     NOT NULL,
    refreshed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, site_code, business_date)
);
CREATE INDEX daily_site_rollup_business_date ON reporting.daily_site_rollup (business_date);

COMMENT ON TABLE reporting.daily_site_rollup IS
    'Additive KPI sums per (account, site, business day) with at least one counted transaction. Maintained by reporting.refresh_site_days(); rebuilt by reporting.refresh_all(). Read reporting.daily_site_kpis instead.';
COMMENT ON COLUMN reporting.daily_site_rollup.account IS 'Configured account.';
COMMENT ON COLUMN reporting.daily_site_rollup.site_code IS 'Site code.';
COMMENT ON COLUMN reporting.daily_site_rollup.business_date IS 'Business day (the site''s local calendar day).';
COMMENT ON COLUMN reporting.daily_site_rollup.transactions IS 'Transactions not voided, of every kind (redemptions included).';
COMMENT ON COLUMN reporting.daily_site_rollup.total_sales IS 'Sum of total over transactions that are not membership redemptions.';
COMMENT ON COLUMN reporting.daily_site_rollup.membership_sales IS 'Sum of total over membership plan sales (that are not also redemptions).';
COMMENT ON COLUMN reporting.daily_site_rollup.member_washes IS 'Wash transactions that are membership redemptions.';
COMMENT ON COLUMN reporting.daily_site_rollup.retail_washes IS 'Wash transactions that are neither plan sales nor redemptions.';
COMMENT ON COLUMN reporting.daily_site_rollup.plan_sale_washes IS 'Wash transactions that are plan sales (and not redemptions).';
COMMENT ON COLUMN reporting.daily_site_rollup.free_washes IS 'Retail washes with a total of 0.';
COMMENT ON COLUMN reporting.daily_site_rollup.new_memberships IS 'Transactions that are plan sales and recurring sales (new sign-ups).';
COMMENT ON COLUMN reporting.daily_site_rollup.refreshed_at IS 'When this row was last recomputed.';

-- Recomputes the rollup rows of the given site-days of one account from the
-- base tables. Called by the export in the same transaction as each page it
-- upserts, so the rollup is never behind committed data. Per-key advisory
-- locks, taken in a fixed order, serialise concurrent refreshes of one day, and
-- each statement runs after the lock so it sees every committed page.
CREATE FUNCTION reporting.refresh_site_days(p_account text, p_site_codes text[], p_dates date[])
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    written integer;
BEGIN
    IF p_account IS NULL THEN
        RAISE EXCEPTION 'reporting.refresh_site_days: p_account must not be NULL';
    END IF;
    IF coalesce(cardinality(p_site_codes), 0) <> coalesce(cardinality(p_dates), 0) THEN
        RAISE EXCEPTION 'reporting.refresh_site_days: % site codes but % dates (parallel arrays must have equal length)',
            coalesce(cardinality(p_site_codes), 0), coalesce(cardinality(p_dates), 0);
    END IF;

    PERFORM pg_advisory_xact_lock(hashtext('reporting.daily_site_rollup'),
                                  hashtext(p_account || '/' || k.site_code || '/' || k.business_date::text))
       FROM (SELECT DISTINCT site_code, business_date
               FROM unnest(p_site_codes, p_dates) AS u(site_code, business_date)
              WHERE site_code IS NOT NULL AND business_date IS NOT NULL
              ORDER BY site_code, business_date) k;

    WITH keys AS (
        SELECT DISTINCT site_code, business_date
          FROM unnest(p_site_codes, p_dates) AS u(site_code, business_date)
    ), sums AS (
        SELECT f.account, f.site_code, f.business_date,
               count(*)                                                              AS transactions,
               coalesce(sum(f.total) FILTER (WHERE NOT f.is_plan_redemption), 0)      AS total_sales,
               coalesce(sum(f.total) FILTER (WHERE f.is_plan_sale AND NOT f.is_plan_redemption), 0)
                                                                                      AS membership_sales,
               count(*) FILTER (WHERE f.is_wash AND f.is_plan_redemption)             AS member_washes,
               count(*) FILTER (WHERE f.is_wash AND NOT f.is_plan_sale AND NOT f.is_plan_redemption)
                                                                                      AS retail_washes,
               count(*) FILTER (WHERE f.is_wash AND f.is_plan_sale AND NOT f.is_plan_redemption)
                                                                                      AS plan_sale_washes,
               count(*) FILTER (WHERE f.is_wash AND NOT f.is_plan_sale AND NOT f.is_plan_redemption
                                  AND f.total = 0)                                    AS free_washes,
               count(*) FILTER (WHERE f.is_new_membership)                            AS new_memberships
          FROM reporting.transaction_facts f
          JOIN keys k ON k.site_code = f.site_code AND k.business_date = f.business_date
         WHERE f.account = p_account
         GROUP BY f.account, f.site_code, f.business_date
    ), upserted AS (
        INSERT INTO reporting.daily_site_rollup AS r
               (account, site_code, business_date, transactions, total_sales, membership_sales,
                member_washes, retail_washes, plan_sale_washes, free_washes, new_memberships)
        SELECT account, site_code, business_date, transactions, total_sales, membership_sales,
               member_washes, retail_washes, plan_sale_washes, free_washes, new_memberships
          FROM sums
        ON CONFLICT (account, site_code, business_date) DO UPDATE
           SET transactions     = excluded.transactions,
               total_sales      = excluded.total_sales,
               membership_sales = excluded.membership_sales,
               member_washes    = excluded.member_washes,
               retail_washes    = excluded.retail_washes,
               plan_sale_washes = excluded.plan_sale_washes,
               free_washes      = excluded.free_washes,
               new_memberships  = excluded.new_memberships,
               refreshed_at     = now()
        RETURNING 1
    ), emptied AS (
        -- A day whose transactions are all gone or voided loses its row.
        DELETE FROM reporting.daily_site_rollup r
         USING keys k
         WHERE r.account = p_account
           AND r.site_code = k.site_code
           AND r.business_date = k.business_date
           AND NOT EXISTS (SELECT 1 FROM sums s
                            WHERE s.site_code = k.site_code AND s.business_date = k.business_date)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM emptied) INTO written;

    RETURN written;
END
$$;

COMMENT ON FUNCTION reporting.refresh_site_days(text, text[], date[]) IS
    'Recomputes reporting.daily_site_rollup for the (p_site_codes[i], p_dates[i]) site-days of account p_account from sonnys.transactions and transaction_items; a site-day with no counted transaction loses its row. Call in the same transaction as the writes it reflects. Returns the number of rollup rows written or deleted.';

-- Rebuilds the whole rollup, for operators after a manual data fix. Readers keep
-- seeing the old rows until it commits; page refreshes wait for it.
CREATE FUNCTION reporting.refresh_all()
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
    RETURN written;
END
$$;

COMMENT ON FUNCTION reporting.refresh_all() IS
    'Rebuilds reporting.daily_site_rollup from scratch from the base tables (after a manual data fix). Returns the number of rollup rows.';

REVOKE EXECUTE ON FUNCTION reporting.refresh_site_days(text, text[], date[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION reporting.refresh_all() FROM PUBLIC;

-- The rate is recomputed from summed counts at every level, never averaged.
CREATE FUNCTION reporting.conversion_rate(new_memberships numeric, eligible_washes numeric)
RETURNS numeric
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT round(CASE WHEN eligible_washes > 0 THEN new_memberships / eligible_washes ELSE 0 END, 6)
$$;

COMMENT ON FUNCTION reporting.conversion_rate(numeric, numeric) IS
    'new_memberships / eligible_washes rounded to 6 decimal places; 0 when there is no eligible wash.';

CREATE VIEW reporting.daily_site_kpis AS
SELECT r.business_date,
       r.account,
       r.site_code,
       s.name                                                       AS site_name,
       r.transactions,
       r.total_sales,
       r.total_sales - r.membership_sales                           AS retail_sales,
       r.membership_sales,
       r.member_washes,
       r.retail_washes,
       r.free_washes,
       e.eligible_washes,
       r.new_memberships,
       reporting.conversion_rate(r.new_memberships, e.eligible_washes) AS conversion_rate,
       r.member_washes + r.retail_washes + r.plan_sale_washes       AS total_washes,
       r.plan_sale_washes
  FROM reporting.daily_site_rollup r
 CROSS JOIN LATERAL (SELECT r.retail_washes + r.plan_sale_washes - r.free_washes AS eligible_washes) e
  LEFT JOIN LATERAL (SELECT si.name
                       FROM sonnys.sites si
                      WHERE si.account = r.account AND si.code = r.site_code
                      ORDER BY si.updated_at DESC
                      LIMIT 1) s ON true;

-- Roll-ups sum the site figures (all additive) and recompute the rate.
CREATE VIEW reporting.daily_account_kpis AS
SELECT business_date,
       account,
       sum(transactions)::bigint     AS transactions,
       sum(total_sales)              AS total_sales,
       sum(retail_sales)             AS retail_sales,
       sum(membership_sales)         AS membership_sales,
       sum(member_washes)::bigint    AS member_washes,
       sum(retail_washes)::bigint    AS retail_washes,
       sum(free_washes)::bigint      AS free_washes,
       sum(eligible_washes)::bigint  AS eligible_washes,
       sum(new_memberships)::bigint  AS new_memberships,
       reporting.conversion_rate(sum(new_memberships), sum(eligible_washes)) AS conversion_rate,
       sum(total_washes)::bigint     AS total_washes,
       sum(plan_sale_washes)::bigint AS plan_sale_washes
  FROM reporting.daily_site_kpis
 GROUP BY business_date, account;

CREATE VIEW reporting.daily_kpis AS
SELECT business_date,
       sum(transactions)::bigint     AS transactions,
       sum(total_sales)              AS total_sales,
       sum(retail_sales)             AS retail_sales,
       sum(membership_sales)         AS membership_sales,
       sum(member_washes)::bigint    AS member_washes,
       sum(retail_washes)::bigint    AS retail_washes,
       sum(free_washes)::bigint      AS free_washes,
       sum(eligible_washes)::bigint  AS eligible_washes,
       sum(new_memberships)::bigint  AS new_memberships,
       reporting.conversion_rate(sum(new_memberships), sum(eligible_washes)) AS conversion_rate,
       sum(total_washes)::bigint     AS total_washes,
       sum(plan_sale_washes)::bigint AS plan_sale_washes
  FROM reporting.daily_site_kpis
 GROUP BY business_date;

COMMENT ON VIEW reporting.daily_site_kpis IS
    'KPIs per site and business day (days with at least one counted transaction). Reads the rollup: fast at any volume.';
COMMENT ON VIEW reporting.daily_account_kpis IS
    'KPIs per account and business day: site figures summed, conversion_rate recomputed from the sums.';
COMMENT ON VIEW reporting.daily_kpis IS
    'KPIs per business day for the whole chain (every account): sums, conversion_rate recomputed from the sums.';

-- The same column meanings in the three daily views.
DO $$
DECLARE
    v text;
    c record;
BEGIN
    FOREACH v IN ARRAY ARRAY['daily_site_kpis', 'daily_account_kpis', 'daily_kpis'] LOOP
        FOR c IN
            SELECT * FROM (VALUES
                ('business_date',    'Business day (the site''s local calendar day).'),
                ('account',          'Configured account.'),
                ('site_code',        'Site code.'),
                ('site_name',        'Site name from sonnys.sites (NULL if the site is not in the site list).'),
                ('transactions',     'Transactions not voided, of every kind (membership redemptions included).'),
                ('total_sales',      'Sum of total over transactions that are not membership redemptions.'),
                ('retail_sales',     'total_sales - membership_sales.'),
                ('membership_sales', 'Sum of total over membership plan sales.'),
                ('member_washes',    'Wash transactions that are membership redemptions.'),
                ('retail_washes',    'Wash transactions that are neither plan sales nor redemptions.'),
                ('free_washes',      'Retail washes with a total of 0.'),
                ('eligible_washes',  'total_washes - member_washes - free_washes: washes that could have been sold a membership.'),
                ('new_memberships',  'Plan sales that are recurring sales: new sign-ups, not upgrades or switches.'),
                ('conversion_rate',  'new_memberships / eligible_washes from the summed counts, 6 decimal places; 0 when eligible_washes is 0.'),
                ('total_washes',     'member_washes + retail_washes + plan_sale_washes.'),
                ('plan_sale_washes', 'Wash transactions that are plan sales.')
            ) AS d(col, doc)
            WHERE EXISTS (SELECT 1 FROM information_schema.columns
                           WHERE table_schema = 'reporting' AND table_name = v AND column_name = d.col)
        LOOP
            EXECUTE format('COMMENT ON COLUMN reporting.%I.%I IS %L', v, c.col, c.doc);
        END LOOP;
    END LOOP;
END
$$;

-- Tender and department breakdowns are read rarely and per site or account, so
-- they are plain views over the base tables (indexed by site-day and by
-- transaction) rather than rolled up.
CREATE VIEW reporting.tender_mix AS
SELECT t.account,
       t.site_code,
       t.business_date,
       d.tender,
       d.tender_sub_type,
       count(DISTINCT t.id)::bigint AS transactions,
       coalesce(sum(d.amount), 0)   AS amount,
       coalesce(sum(d.change), 0)   AS change,
       coalesce(sum(d.total), 0)    AS total
  FROM sonnys.transactions t
  JOIN sonnys.transaction_tenders d ON d.account = t.account AND d.transaction_id = t.id
 WHERE lower(coalesce(t.transaction_status, '')) <> 'voided'
 GROUP BY t.account, t.site_code, t.business_date, d.tender, d.tender_sub_type;

COMMENT ON VIEW reporting.tender_mix IS
    'Tender lines of transactions not voided, per site, business day, tender and sub-type. Filter by account, site_code and business_date.';
COMMENT ON COLUMN reporting.tender_mix.account IS 'Configured account.';
COMMENT ON COLUMN reporting.tender_mix.site_code IS 'Site code.';
COMMENT ON COLUMN reporting.tender_mix.business_date IS 'Business day (the site''s local calendar day).';
COMMENT ON COLUMN reporting.tender_mix.tender IS 'Tender as the source names it (e.g. Cash, Credit).';
COMMENT ON COLUMN reporting.tender_mix.tender_sub_type IS 'Tender sub-type (e.g. card brand).';
COMMENT ON COLUMN reporting.tender_mix.transactions IS 'Transactions with at least one line of this tender.';
COMMENT ON COLUMN reporting.tender_mix.amount IS 'Sum of tendered amounts.';
COMMENT ON COLUMN reporting.tender_mix.change IS 'Sum of change given.';
COMMENT ON COLUMN reporting.tender_mix.total IS 'Sum of tender totals (amount - change as the source reports it).';

CREATE VIEW reporting.department_sales AS
SELECT t.account,
       t.site_code,
       t.business_date,
       i.department,
       coalesce(sum(i.quantity), 0) AS quantity,
       coalesce(sum(i.gross), 0)    AS gross,
       coalesce(sum(i.net), 0)      AS net,
       coalesce(sum(i.discount), 0) AS discount,
       coalesce(sum(i.tax), 0)      AS tax
  FROM sonnys.transactions t
  JOIN sonnys.transaction_items i ON i.account = t.account AND i.transaction_id = t.id
 WHERE lower(coalesce(t.transaction_status, '')) <> 'voided'
   AND i.is_voided IS NOT TRUE
 GROUP BY t.account, t.site_code, t.business_date, i.department;

COMMENT ON VIEW reporting.department_sales IS
    'Items not voided of transactions not voided, per site, business day and department. Filter by account, site_code and business_date.';
COMMENT ON COLUMN reporting.department_sales.account IS 'Configured account.';
COMMENT ON COLUMN reporting.department_sales.site_code IS 'Site code.';
COMMENT ON COLUMN reporting.department_sales.business_date IS 'Business day (the site''s local calendar day).';
COMMENT ON COLUMN reporting.department_sales.department IS 'Item department as the source names it (e.g. Wash, Recurring Plan, Merchandise).';
COMMENT ON COLUMN reporting.department_sales.quantity IS 'Sum of item quantities.';
COMMENT ON COLUMN reporting.department_sales.gross IS 'Sum of gross item amounts.';
COMMENT ON COLUMN reporting.department_sales.net IS 'Sum of net item amounts.';
COMMENT ON COLUMN reporting.department_sales.discount IS 'Sum of item discounts.';
COMMENT ON COLUMN reporting.department_sales.tax IS 'Sum of item tax.';

-- Freshness per site, so a dashboard can tell stale data from a slow day.
CREATE VIEW reporting.sync_health AS
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
       d.last_synced_at
  FROM known k
  LEFT JOIN configured c ON c.account = k.account AND c.site_code = k.site_code
 CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE coalesce(c.effective_timezone, 'UTC'))::date - 1 AS yesterday) y
 CROSS JOIN LATERAL (
        SELECT max(sd.business_date) FILTER (WHERE sd.status = 'done')       AS last_complete_business_date,
               min(sd.business_date) FILTER (WHERE sd.status = 'done')       AS first_done,
               count(*) FILTER (WHERE sd.status = 'done'
                                  AND sd.business_date <= y.yesterday)       AS done_through_yesterday,
               count(*) FILTER (WHERE sd.status = 'failed')::integer         AS failed_days,
               max(sd.finished_at) FILTER (WHERE sd.status = 'done')         AS last_synced_at
          FROM sonnys.sync_days sd
         WHERE sd.account = k.account AND sd.site_code = k.site_code) d;

COMMENT ON VIEW reporting.sync_health IS
    'Freshness per site: every site of sonnys.sites with a code, plus any site seen in sonnys.sync_days.';
COMMENT ON COLUMN reporting.sync_health.account IS 'Configured account.';
COMMENT ON COLUMN reporting.sync_health.site_code IS 'Site code.';
COMMENT ON COLUMN reporting.sync_health.site_name IS 'Site name from sonnys.sites (NULL if the site is not in the site list).';
COMMENT ON COLUMN reporting.sync_health.last_complete_business_date IS 'Latest business day exported completely (sync_days status done); NULL if none yet.';
COMMENT ON COLUMN reporting.sync_health.missing_days IS 'Days from the first complete day up to yesterday (in the site''s effective time zone; UTC if the site is not in the site list) that are not complete; NULL if no day is complete yet.';
COMMENT ON COLUMN reporting.sync_health.failed_days IS 'Business days whose export is currently failed.';
COMMENT ON COLUMN reporting.sync_health.last_error IS 'Most recent error of a day not done (failed or being retried); NULL if none.';
COMMENT ON COLUMN reporting.sync_health.last_synced_at IS 'When the latest complete day finished exporting.';

-- Read-only role for BI tools: the reporting schema only. The views are owned by
-- the migrating user and read sonnys.* with its rights, so granting them is enough.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sonnys_reader') THEN
        BEGIN
            CREATE ROLE sonnys_reader NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by a migration of another database
        END;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA reporting TO sonnys_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO sonnys_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO sonnys_reader;
