-- The live service's labour answers: a clock entry without `clockIn` cannot
-- be keyed, so it is quarantined alone in sonnys.rejected_records (record_key
-- 'clock:{employee_id}:{md5 of the raw entry}', business_date the local date
-- of its clockOut, else the first business day the export replaced) and the
-- rest of the answer is stored. Each labour export records how many it set
-- aside. Names are relied on by dashboards: add, never rename.

ALTER TABLE sonnys.people_syncs
    ADD COLUMN rejected integer NOT NULL DEFAULT 0;

COMMENT ON COLUMN sonnys.people_syncs.rejected IS
    'Records this export quarantined in sonnys.rejected_records (clock entries without clockIn); 0 for membership exports.';
