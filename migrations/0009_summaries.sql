-- The live record shape: the export's records lack the membership flags and
-- the status; the transaction summaries (GET /transaction/version-2) carry
-- them. Each exported site-day reads its summaries; they fill
-- transaction_status, is_recurring_plan_sale and is_recurring_plan_redemption,
-- and their digest makes the nightly lookback a cheap comparison.

-- What the summary of a transaction said when it was last read: a digest of
-- its id, number, total, date, customer id, plan flags and status. A lookback
-- compares the summaries it reads now with these digests.
ALTER TABLE sonnys.transactions
    ADD COLUMN summary_digest text;
COMMENT ON COLUMN sonnys.transactions.summary_digest IS
    'Digest of the transaction''s summary (GET /transaction/version-2: id, number, total, date, customer id, plan flags, status) when last read; NULL when summaries are off or refused.';

-- A done day the lookback compared with its summaries and found unchanged.
ALTER TABLE sonnys.sync_days
    ADD COLUMN checked_at timestamptz;
COMMENT ON COLUMN sonnys.sync_days.checked_at IS
    'When a lookback last compared this done day with its summaries and found it unchanged (it was not exported again).';

-- Every lookback check of a done day: whether the summaries showed a change,
-- by the day's age, so that `plan` can forecast the lookback and the status
-- page can show how often it finds changes.
CREATE TABLE sonnys.lookback_checks (
    account       text        NOT NULL,
    site_code     text        NOT NULL,
    business_date date        NOT NULL,
    checked_at    timestamptz NOT NULL DEFAULT now(),
    age_days      integer     NOT NULL,  -- days between the business day and the check's last ended day
    changed       boolean     NOT NULL,
    requests      integer     NOT NULL,  -- summary requests the check spent
    PRIMARY KEY (account, site_code, business_date, checked_at)
);
CREATE INDEX lookback_checks_recent ON sonnys.lookback_checks (checked_at);
COMMENT ON TABLE sonnys.lookback_checks IS
    'One row per lookback check of a done site-day by its summaries: changed = the day was exported again.';

-- When each account last re-exported its lookback days whole
-- (schedule.full_lookback_every), for the changes a summary cannot show.
CREATE TABLE sonnys.full_lookbacks (
    account text        PRIMARY KEY,
    done_at timestamptz NOT NULL
);
COMMENT ON TABLE sonnys.full_lookbacks IS
    'When the account''s lookback days were last exported whole (schedule.full_lookback_every).';

-- Classification: the v2 value where present, else the v1 flag. With
-- summaries (the default) the v2 values are exact. Without them
-- ([transactions] summaries = false, or summaries refused), a redemption is
-- is_recurring_redemption and a plan sale is is_recurring_sale: plan upgrades
-- then count as retail, and voids are not excluded (the status is unknown).
-- Same columns in the same order: dashboards and the rollup read them.
CREATE OR REPLACE VIEW reporting.transaction_facts AS
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
       coalesce(t.is_recurring_plan_sale, t.is_recurring_sale, false)             AS is_plan_sale,
       coalesce(t.is_recurring_plan_redemption, t.is_recurring_redemption, false) AS is_plan_redemption,
       coalesce(t.is_recurring_plan_sale, t.is_recurring_sale, false)
           AND coalesce(t.is_recurring_sale, false)    AS is_new_membership
  FROM sonnys.transactions t
 WHERE lower(coalesce(t.transaction_status, '')) <> 'voided';

COMMENT ON VIEW reporting.transaction_facts IS
    'Every transaction that counts in the KPIs (status not Voided; unknown status counts), classified the way the KPIs use it: the v2 flags (from the summaries) where present, else the v1 flags.';
COMMENT ON COLUMN reporting.transaction_facts.is_plan_sale IS
    'Membership plan sale: is_recurring_plan_sale, else (no summary) is_recurring_sale.';
COMMENT ON COLUMN reporting.transaction_facts.is_plan_redemption IS
    'Membership redemption: is_recurring_plan_redemption, else (no summary) is_recurring_redemption. Usage, not a sale: its total (the wash''s price) is not counted in sales.';
COMMENT ON COLUMN reporting.transaction_facts.is_new_membership IS
    'Genuine new sign-up: a plan sale that is also a recurring sale (not an upgrade or switch).';

-- Stored days are classified by the new rule at once.
SELECT reporting.refresh_all();
