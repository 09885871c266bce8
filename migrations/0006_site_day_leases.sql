-- Site-day leases: a process claims a day before exporting it and holds the
-- claim while pages flow (renewed with the heartbeat). Another process skips
-- or waits for a claimed day, takes it over once the lease has run out (its
-- owner died), and a process that lost its lease cannot write (every page
-- write checks it: fencing).
ALTER TABLE sonnys.sync_days
    ADD COLUMN lease_owner uuid,          -- the process exporting the day
    ADD COLUMN lease_until timestamptz;   -- its claim holds until then
