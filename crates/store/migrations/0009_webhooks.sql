-- infogap store schema, version 9: webhooks and their durable outbox.
--
-- A webhook is a URL, the event types it takes, and the role (and
-- department) whose field policy shapes what it is sent. Its signing
-- secret is never stored: it is derived from the store's secret file and
-- `salt` (HMAC), so a copy of the database alone cannot forge signatures.
-- `alerts_from` is the last alert id already turned into messages for it
-- (a webhook added later is not sent older alerts).
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    role        TEXT NOT NULL,
    department  TEXT,
    salt        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    alerts_from INTEGER NOT NULL,
    removed_at  INTEGER
);

-- One row per message and webhook, written in the same transaction that
-- moves the webhook's `alerts_from`, so an alert is turned into a message
-- exactly once and none is lost to a crash. `body` is the payload (already
-- shaped by the webhook's policy); with a data key it is sealed in
-- `secret` instead; both are cleared once delivered. A claimed try moves
-- `next_at` (Unix ms) past a lease, so a killed server's message is tried
-- again after the lease; `attempts` counts claimed tries. After the last
-- try the row is `dead` (the dead-letter list) until replayed. A
-- customer's messages go with their erasure.
CREATE TABLE webhook_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id      TEXT NOT NULL UNIQUE,
    webhook_id  INTEGER NOT NULL REFERENCES webhooks (id),
    event       TEXT NOT NULL,
    customer_id INTEGER,
    alert_id    INTEGER,
    created_at  INTEGER NOT NULL,
    body        TEXT,
    secret      BLOB,
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'dead', 'dropped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    last_status INTEGER,
    last_error  TEXT,
    done_at     INTEGER,
    UNIQUE (webhook_id, alert_id)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE state = 'pending';
CREATE INDEX webhook_outbox_state ON webhook_outbox (state, id);
CREATE INDEX webhook_outbox_customer ON webhook_outbox (customer_id);
