-- Fill the daily rollup from transactions stored before the reporting schema
-- existed. Pages only refresh the site-days they change, so without this an
-- upgraded database would report nothing for its older, unchanged days.
-- On a new database there is nothing to fill and this is instant.
SELECT reporting.refresh_all();
