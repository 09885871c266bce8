-- A request slot is charged until its request's answer came back, not only
-- from its reservation (src/budget/pg_ledger.rs): the vendor counts a request
-- when it arrives, which on a busy host can be later than the jitter guard.
-- Each reserved slot gets a name, which the grant hands to its request; once
-- answered, the budget writes sent_at = greatest(sent_at, clock_timestamp())
-- for it, so the slot is reused no sooner than a window plus guard after the
-- answer. Names are relied on by dashboards: add, never rename.

ALTER TABLE sonnys.api_requests ADD COLUMN id bigserial PRIMARY KEY;

COMMENT ON COLUMN sonnys.api_requests.id IS
    'The slot''s name, by which the process that reserved it settles it once its request was answered.';
COMMENT ON COLUMN sonnys.api_requests.sent_at IS
    'When the slot was reserved (database clock) or, once its request was answered, the later of that and the answer: the slot is free again a window plus guard after it.';
