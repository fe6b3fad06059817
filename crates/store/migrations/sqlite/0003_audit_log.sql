-- The audit log: append-only, hash-chained. audit_head holds the last
-- entry's sequence number and hash in one row, which every append updates
-- inside its transaction, so concurrent appenders (even in different
-- processes) queue on that row and can never fork the chain.
-- Nothing in Palisade updates or deletes audit_log or audit_checkpoints rows.

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    tenant_id   TEXT,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    source      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE TABLE audit_head (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    seq              INTEGER NOT NULL,
    hash             TEXT NOT NULL,
    checkpoint_seq   INTEGER NOT NULL,
    checkpoint_at    INTEGER NOT NULL
);
INSERT INTO audit_head (id, seq, hash, checkpoint_seq, checkpoint_at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, 0);

CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL
);
