-- infogap store schema, version 7: the event intake journal.
--
-- A message taken over HTTP (`POST /v1/track`, `/v1/batch`, …) is a row
-- here before its request is answered. The intake worker applies pending
-- rows to the facts in the same transaction that marks them done, so a
-- crash between the two repeats nothing and loses nothing.
-- (source, message_id) is unique: a message sent again is a duplicate.
-- `body` is the validated message as JSON; with a data key it is sealed in
-- `secret` instead. Both are cleared once the row is done; the row stays
-- (its message id keeps catching duplicates) with what became of it.
CREATE TABLE intake (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'applied', 'suppressed', 'no_consent', 'rejected')),
    body        TEXT,
    secret      BLOB,
    note        TEXT,
    done_at     INTEGER,
    UNIQUE (source, message_id)
);
CREATE INDEX intake_pending ON intake (seq) WHERE state = 'pending';
