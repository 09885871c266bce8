-- Core tables of sonnys-etl. The database is the product's interface: these
-- names are relied on by operators' reports and dashboards. Add, never rename.

CREATE SCHEMA IF NOT EXISTS sonnys;

-- Sites as /site/list reports them, per configured account.
CREATE TABLE sonnys.sites (
    account      text        NOT NULL,
    site_id      bigint      NOT NULL,
    code         text        NOT NULL,
    name         text,
    timezone     text,                       -- IANA zone as the API sent it (NULL: account's zone applies)
    effective_timezone text  NOT NULL,       -- the zone business days are computed in
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, site_id)
);
CREATE INDEX sites_account_code ON sonnys.sites (account, code);

-- One row per transaction; (account, id) is the source's identity.
CREATE TABLE sonnys.transactions (
    account                      text        NOT NULL,
    id                           text        NOT NULL,
    number                       bigint,
    type                         text,
    site_code                    text        NOT NULL,
    business_date                date        NOT NULL,
    completed_at                 timestamptz NOT NULL,
    sales_device_name            text,
    total                        numeric     NOT NULL,
    customer_id                  text,
    customer_name                text,
    vehicle_license_plate        text,
    employee_cashier             text,
    employee_greeter             text,
    transaction_status           text,
    is_recurring_payment         boolean,
    is_recurring_redemption      boolean,
    is_recurring_sale            boolean,
    is_prepaid_redemption        boolean,
    is_prepaid_sale              boolean,
    is_recurring_plan_sale       boolean,
    is_recurring_plan_redemption boolean,
    raw                          jsonb       NOT NULL,
    first_seen_at                timestamptz NOT NULL DEFAULT now(),
    last_changed_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, id)
);
CREATE INDEX transactions_site_day ON sonnys.transactions (account, site_code, business_date);
CREATE INDEX transactions_business_date ON sonnys.transactions (business_date);

CREATE TABLE sonnys.transaction_items (
    account         text    NOT NULL,
    transaction_id  text    NOT NULL,
    line_no         integer NOT NULL,
    name            text,
    sku             text,
    department      text,
    quantity        numeric,
    gross           numeric,
    net             numeric,
    discount        numeric,
    tax             numeric,
    additional_fee  numeric,
    is_voided       boolean,
    PRIMARY KEY (account, transaction_id, line_no),
    FOREIGN KEY (account, transaction_id) REFERENCES sonnys.transactions (account, id) ON DELETE CASCADE
);

CREATE TABLE sonnys.transaction_tenders (
    account                     text    NOT NULL,
    transaction_id              text    NOT NULL,
    line_no                     integer NOT NULL,
    tender                      text,
    tender_sub_type             text,
    amount                      numeric,
    change                      numeric,
    total                       numeric,
    reference_number            text,
    credit_card_last_four       text,
    credit_card_expiration_date text,
    PRIMARY KEY (account, transaction_id, line_no),
    FOREIGN KEY (account, transaction_id) REFERENCES sonnys.transactions (account, id) ON DELETE CASCADE
);

CREATE TABLE sonnys.transaction_discounts (
    account              text    NOT NULL,
    transaction_id       text    NOT NULL,
    line_no              integer NOT NULL,
    discount_name        text,
    discount_sku         text,
    applied_to_item_name text,
    amount               numeric,
    discount_code        text,
    PRIMARY KEY (account, transaction_id, line_no),
    FOREIGN KEY (account, transaction_id) REFERENCES sonnys.transactions (account, id) ON DELETE CASCADE
);

-- Progress of every (account, site, business day): 'done' only once every page
-- of the day is committed, so a crash or outage leaves the day to be redone.
CREATE TABLE sonnys.sync_days (
    account       text        NOT NULL,
    site_code     text        NOT NULL,
    business_date date        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    transactions  integer     NOT NULL DEFAULT 0,
    pages         integer     NOT NULL DEFAULT 0,
    requests      integer     NOT NULL DEFAULT 0,
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text,
    started_at    timestamptz,
    finished_at   timestamptz,
    PRIMARY KEY (account, site_code, business_date)
);
CREATE INDEX sync_days_status ON sonnys.sync_days (status) WHERE status <> 'done';
