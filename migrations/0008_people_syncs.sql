-- What the labour and membership exports covered, and when: the service
-- decides from it whether the weekly clock-entry sweep and the walk back
-- through membership history are due, `plan` forecasts their requests from
-- it, and `status` shows their freshness.
CREATE TABLE sonnys.people_syncs (
    account      text        NOT NULL,
    data         text        NOT NULL CHECK (data IN ('labour', 'labour_sweep', 'member_sign_ups', 'member_history', 'member_changes')),
    covered_from timestamptz NOT NULL,
    covered_to   timestamptz NOT NULL,
    status       text        NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    requests     integer     NOT NULL DEFAULT 0,
    records      integer     NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    last_error   text,
    PRIMARY KEY (account, data, covered_from, covered_to)
);
CREATE INDEX people_syncs_latest ON sonnys.people_syncs (account, data, finished_at DESC);

COMMENT ON TABLE sonnys.people_syncs IS
    'One row per labour or membership export: the span it covered, its outcome and the requests it spent.';
