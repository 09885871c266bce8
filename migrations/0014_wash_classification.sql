-- Washes counted the way the operator's BackOffice counts them. Two ways,
-- besides the default department `Wash`:
--
-- 1. reporting.wash_departments: the item departments that make a
--    transaction a wash (case-insensitive), seeded with `wash`. The
--    configuration's [reporting] wash_departments writes it at migrate and
--    start; operators may edit it too. Any change recomputes the rollup of
--    the site-days holding items of the departments added or removed.
-- 2. The API's own classification, GET /transaction/type/wash, read for each
--    exported site-day when [transactions] wash_list = true: the day's
--    listed transactions are its washes, whatever their departments.
--
-- reporting.transaction_facts prefers 2 where the day's list was read, and
-- uses 1 elsewhere. Names are relied on by dashboards: add, never rename.

CREATE TABLE reporting.wash_departments (
    department text        NOT NULL CHECK (btrim(department) <> ''),
    added_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX wash_departments_name ON reporting.wash_departments (lower(department));
INSERT INTO reporting.wash_departments (department) VALUES ('wash');

COMMENT ON TABLE reporting.wash_departments IS
    'Item departments that make a transaction a wash, compared case-insensitively (seeded with wash). Written from [reporting] wash_departments at migrate and start when the key is set; a change recomputes the affected days of reporting.daily_site_rollup.';
COMMENT ON COLUMN reporting.wash_departments.department IS 'A department name as items carry it; case does not matter (one row per name in any case).';
COMMENT ON COLUMN reporting.wash_departments.added_at IS 'When the name was added.';

-- The days whose wash list (GET /transaction/type/wash) was read, and the
-- transactions it listed.
CREATE TABLE sonnys.wash_list_days (
    account       text        NOT NULL,
    site_code     text        NOT NULL,
    business_date date        NOT NULL,
    washes        integer     NOT NULL,
    read_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, site_code, business_date)
);
CREATE TABLE sonnys.wash_list_transactions (
    account        text NOT NULL,
    site_code      text NOT NULL,
    business_date  date NOT NULL,
    transaction_id text NOT NULL,
    PRIMARY KEY (account, site_code, business_date, transaction_id),
    FOREIGN KEY (account, site_code, business_date)
        REFERENCES sonnys.wash_list_days (account, site_code, business_date) ON DELETE CASCADE
);

COMMENT ON TABLE sonnys.wash_list_days IS
    'Site-days whose wash list (GET /transaction/type/wash) was read ([transactions] wash_list = true): on these days a transaction is a wash exactly when the list names it.';
COMMENT ON COLUMN sonnys.wash_list_days.account IS 'Configured account.';
COMMENT ON COLUMN sonnys.wash_list_days.site_code IS 'Site code.';
COMMENT ON COLUMN sonnys.wash_list_days.business_date IS 'Business day (the site''s local calendar day).';
COMMENT ON COLUMN sonnys.wash_list_days.washes IS 'Transactions the list named.';
COMMENT ON COLUMN sonnys.wash_list_days.read_at IS 'When the list was last read.';
COMMENT ON TABLE sonnys.wash_list_transactions IS
    'The transactions the wash list of a site-day named: the API''s own classification of a wash.';
COMMENT ON COLUMN sonnys.wash_list_transactions.transaction_id IS 'The listed transId (sonnys.transactions.id).';

-- Same columns in the same order as before (dashboards and the rollup read
-- them); only is_wash changes its rule.
CREATE OR REPLACE VIEW reporting.transaction_facts AS
SELECT t.account,
       t.id                                            AS transaction_id,
       t.site_code,
       t.business_date,
       t.total,
       CASE WHEN l.account IS NOT NULL
            THEN EXISTS (SELECT 1
                           FROM sonnys.wash_list_transactions w
                          WHERE w.account = t.account
                            AND w.site_code = t.site_code
                            AND w.business_date = t.business_date
                            AND w.transaction_id = t.id)
            ELSE EXISTS (SELECT 1
                           FROM sonnys.transaction_items i
                          WHERE i.account = t.account
                            AND i.transaction_id = t.id
                            AND i.is_voided IS NOT TRUE
                            -- the list once per query (an init plan), not per item
                            AND lower(i.department) = ANY ((SELECT array_agg(lower(d.department))
                                                              FROM reporting.wash_departments d)::text[]))
       END                                             AS is_wash,
       coalesce(t.is_recurring_plan_sale, t.is_recurring_sale, false)             AS is_plan_sale,
       coalesce(t.is_recurring_plan_redemption, t.is_recurring_redemption, false) AS is_plan_redemption,
       coalesce(t.is_recurring_plan_sale, t.is_recurring_sale, false)
           AND coalesce(t.is_recurring_sale, false)    AS is_new_membership
  FROM sonnys.transactions t
  LEFT JOIN sonnys.wash_list_days l
    ON l.account = t.account AND l.site_code = t.site_code AND l.business_date = t.business_date
 WHERE lower(coalesce(t.transaction_status, '')) <> 'voided';

COMMENT ON COLUMN reporting.transaction_facts.is_wash IS
    'Wash transaction: on a site-day whose wash list was read (sonnys.wash_list_days), listed by GET /transaction/type/wash; elsewhere at least one item not voided in a department of reporting.wash_departments (case-insensitive).';

-- Recomputes the rollup of the site-days holding items of the given
-- departments (lower-cased), through reporting.refresh_site_days.
CREATE FUNCTION reporting.refresh_departments(p_departments text[])
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    written integer := 0;
    a record;
BEGIN
    FOR a IN
        SELECT t.account, array_agg(t.site_code) AS site_codes, array_agg(t.business_date) AS dates
          FROM (SELECT DISTINCT t.account, t.site_code, t.business_date
                  FROM sonnys.transaction_items i
                  JOIN sonnys.transactions t ON t.account = i.account AND t.id = i.transaction_id
                 WHERE lower(i.department) = ANY (p_departments)) t
         GROUP BY t.account
    LOOP
        written := written + reporting.refresh_site_days(a.account, a.site_codes, a.dates);
    END LOOP;
    RETURN written;
END
$$;

COMMENT ON FUNCTION reporting.refresh_departments(text[]) IS
    'Recomputes reporting.daily_site_rollup for every site-day with an item in one of p_departments (lower-cased names). Returns the number of rollup rows written or deleted.';

-- A change to the list, however made, recomputes what it changes.
CREATE FUNCTION reporting.wash_departments_changed()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM reporting.refresh_departments(ARRAY(SELECT DISTINCT lower(department) FROM sonnys.transaction_items));
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM reporting.refresh_departments(ARRAY(SELECT lower(department) FROM added));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM reporting.refresh_departments(ARRAY(SELECT lower(department) FROM removed));
    ELSE
        -- Only names whose meaning changed: a new case of the same name changes nothing.
        PERFORM reporting.refresh_departments(ARRAY(
            (SELECT lower(department) FROM added EXCEPT SELECT lower(department) FROM removed)
            UNION
            (SELECT lower(department) FROM removed EXCEPT SELECT lower(department) FROM added)));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER wash_departments_inserted AFTER INSERT ON reporting.wash_departments
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION reporting.wash_departments_changed();
CREATE TRIGGER wash_departments_deleted AFTER DELETE ON reporting.wash_departments
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION reporting.wash_departments_changed();
CREATE TRIGGER wash_departments_updated AFTER UPDATE ON reporting.wash_departments
    REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION reporting.wash_departments_changed();
CREATE TRIGGER wash_departments_truncated AFTER TRUNCATE ON reporting.wash_departments
    FOR EACH STATEMENT EXECUTE FUNCTION reporting.wash_departments_changed();

COMMENT ON FUNCTION reporting.wash_departments_changed() IS
    'Trigger of reporting.wash_departments: recomputes the rollup of the site-days holding items of the departments added or removed.';

REVOKE EXECUTE ON FUNCTION reporting.refresh_departments(text[]) FROM PUBLIC;

-- Every department seen on a range of days, for `sonnys-etl report
-- --departments`: items not voided of transactions not voided, and whether
-- the department counts as a wash.
CREATE VIEW reporting.department_washes AS
SELECT t.account,
       t.site_code,
       t.business_date,
       i.department,
       count(*)::bigint                                      AS items,
       count(DISTINCT t.id)::bigint                          AS transactions,
       EXISTS (SELECT 1 FROM reporting.wash_departments d
                WHERE lower(d.department) = lower(i.department)) AS is_wash_department
  FROM sonnys.transactions t
  JOIN sonnys.transaction_items i ON i.account = t.account AND i.transaction_id = t.id
 WHERE lower(coalesce(t.transaction_status, '')) <> 'voided'
   AND i.is_voided IS NOT TRUE
 GROUP BY t.account, t.site_code, t.business_date, i.department;

COMMENT ON VIEW reporting.department_washes IS
    'Item departments per site and business day, with their item and transaction counts and whether reporting.wash_departments counts them as a wash. Filter by business_date (and account, site_code).';
COMMENT ON COLUMN reporting.department_washes.account IS 'Configured account.';
COMMENT ON COLUMN reporting.department_washes.site_code IS 'Site code.';
COMMENT ON COLUMN reporting.department_washes.business_date IS 'Business day (the site''s local calendar day).';
COMMENT ON COLUMN reporting.department_washes.department IS 'Item department as the source names it.';
COMMENT ON COLUMN reporting.department_washes.items IS 'Items not voided of transactions not voided.';
COMMENT ON COLUMN reporting.department_washes.transactions IS 'Transactions with at least one such item.';
COMMENT ON COLUMN reporting.department_washes.is_wash_department IS 'Whether reporting.wash_departments names the department (case-insensitive).';

GRANT SELECT ON reporting.wash_departments, reporting.department_washes TO sonnys_reader;
