-- infogap store schema, version 1.
-- Facts point at the identity that brought them (identity_id), never at the
-- unified customer directly: merging or splitting customers then only rewrites
-- identities.customer_id, and every fact follows. Every fact row carries the
-- file it came from (file_id): re-importing an unchanged file is skipped, a
-- changed file replaces that file's rows, a new file adds to the source.

CREATE TABLE sources (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    namespace   TEXT NOT NULL
);

CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES sources(id),
    path        TEXT NOT NULL,
    UNIQUE (source_id, path)
);

CREATE TABLE import_runs (
    id            INTEGER PRIMARY KEY,
    source_id     INTEGER NOT NULL REFERENCES sources(id),
    file          TEXT NOT NULL,
    file_hash     TEXT NOT NULL,
    config_hash   TEXT NOT NULL,
    rows_read     INTEGER NOT NULL,
    rows_written  INTEGER NOT NULL,
    rows_rejected INTEGER NOT NULL,
    status        TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT NOT NULL,
    seconds       REAL NOT NULL
);

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL
);

CREATE TABLE identities (
    id          INTEGER PRIMARY KEY,
    namespace   TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- customer | email | phone
    value       TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    source_id   INTEGER NOT NULL REFERENCES sources(id),
    line        INTEGER NOT NULL,       -- source record that first brought it
    shared      INTEGER NOT NULL DEFAULT 0, -- over-shared global key: never links
    UNIQUE (namespace, kind, value)
);
CREATE INDEX identities_customer ON identities(customer_id);
CREATE INDEX identities_value ON identities(value);

CREATE TABLE identity_links (
    id          INTEGER PRIMARY KEY,
    a           INTEGER NOT NULL REFERENCES identities(id),
    b           INTEGER NOT NULL REFERENCES identities(id),
    source_id   INTEGER NOT NULL REFERENCES sources(id),
    line        INTEGER NOT NULL,
    rule        TEXT NOT NULL,          -- same_record | link_table
    suppressed  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (a, b, source_id, rule)
);
CREATE INDEX identity_links_b ON identity_links(b);

CREATE TABLE merge_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    action      TEXT NOT NULL,          -- merge | split | unsplit
    customer_id INTEGER NOT NULL,
    other_id    INTEGER,
    detail      TEXT NOT NULL
);
CREATE INDEX merge_log_customer ON merge_log(customer_id);
CREATE INDEX merge_log_other ON merge_log(other_id);

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    name        TEXT,
    category    TEXT,
    price       REAL,
    attrs       TEXT                    -- JSON object of typed attributes
);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    namespace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    time        INTEGER,
    amount      REAL,                   -- from an orders source; NULL = sum of lines
    discount    REAL,
    file_id     INTEGER,                -- file that created it (order lines)
    UNIQUE (namespace, key)
);
CREATE INDEX orders_identity ON orders(identity_id);

CREATE TABLE order_lines (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL,
    file_id     INTEGER NOT NULL,
    order_id    INTEGER NOT NULL REFERENCES orders(id),
    identity_id INTEGER NOT NULL,
    product_id  INTEGER,
    quantity    REAL NOT NULL,
    amount      REAL NOT NULL,
    discount    REAL NOT NULL,
    time        INTEGER
);
CREATE INDEX order_lines_order ON order_lines(order_id);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL,
    file_id     INTEGER NOT NULL,
    identity_id INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    product_id  INTEGER,
    value       REAL,
    channel     TEXT,
    time        INTEGER
);

CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL,
    file_id     INTEGER NOT NULL,
    identity_id INTEGER NOT NULL,
    kind        TEXT NOT NULL,          -- survey | review | ticket | …
    score       REAL,
    text        TEXT,
    channel     TEXT,
    time        INTEGER
);

CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    name        TEXT,
    kind        TEXT,
    start       INTEGER,
    "end"       INTEGER
);

CREATE TABLE campaign_contacts (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL,
    file_id     INTEGER NOT NULL,
    identity_id INTEGER NOT NULL,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    kind        TEXT NOT NULL,          -- exposure | redemption
    time        INTEGER
);

CREATE TABLE campaign_products (
    campaign_id INTEGER NOT NULL,
    product_id  INTEGER NOT NULL,
    coupon      TEXT NOT NULL DEFAULT '',
    source_id   INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, product_id, coupon)
);

CREATE TABLE consents (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL,
    file_id     INTEGER NOT NULL,
    identity_id INTEGER NOT NULL,
    purpose     TEXT NOT NULL,
    granted     INTEGER NOT NULL,
    time        INTEGER
);

CREATE TABLE attributes (
    identity_id INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,          -- JSON scalar: keeps the type
    source_id   INTEGER NOT NULL,
    line        INTEGER NOT NULL,
    PRIMARY KEY (identity_id, name, source_id)
);

CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);

CREATE TABLE models (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    params      TEXT NOT NULL,
    metrics     TEXT NOT NULL,
    blob        BLOB NOT NULL,
    UNIQUE (kind, version)
);
