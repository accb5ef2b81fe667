-- infogap store schema, version 2: generations for the analytical snapshot.
--
-- Every write transaction takes the next store generation. Rows of the keyed
-- tables that a transaction inserts or changes carry that generation in
-- `gen`; facts that arrive by file are logged per file and table with the
-- id range the transaction wrote (`snapshot_log`); orders that a replaced
-- file removes leave a tombstone. A process holding a snapshot at generation
-- N reads exactly what changed since N, never the whole store. `store_id`
-- tags derived caches, so a cache of another store is never used.

CREATE TABLE store_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    store_id    TEXT NOT NULL,
    generation  INTEGER NOT NULL
);
INSERT INTO store_meta (id, store_id, generation) VALUES (1, lower(hex(randomblob(16))), 1);

ALTER TABLE identities ADD COLUMN gen INTEGER NOT NULL DEFAULT 1;
ALTER TABLE products ADD COLUMN gen INTEGER NOT NULL DEFAULT 1;
ALTER TABLE campaigns ADD COLUMN gen INTEGER NOT NULL DEFAULT 1;
ALTER TABLE orders ADD COLUMN gen INTEGER NOT NULL DEFAULT 1;
ALTER TABLE attributes ADD COLUMN gen INTEGER NOT NULL DEFAULT 1;
CREATE INDEX identities_gen ON identities(gen);
CREATE INDEX products_gen ON products(gen);
CREATE INDEX campaigns_gen ON campaigns(gen);
CREATE INDEX orders_gen ON orders(gen);
CREATE INDEX attributes_gen ON attributes(gen);

-- One row per (transaction, file, fact table): after generation `gen`, the
-- file's rows of `tbl` are those it had before (`replace` = 0) or none
-- (`replace` = 1), plus its rows with ids in (lo, hi].
CREATE TABLE snapshot_log (
    id          INTEGER PRIMARY KEY,
    gen         INTEGER NOT NULL,
    file_id     INTEGER NOT NULL,
    tbl         TEXT NOT NULL,
    replace     INTEGER NOT NULL,
    lo          INTEGER NOT NULL,
    hi          INTEGER NOT NULL
);
CREATE INDEX snapshot_log_gen ON snapshot_log(gen);

CREATE TABLE snapshot_tombstones (
    gen         INTEGER NOT NULL,
    tbl         TEXT NOT NULL,
    row_id      INTEGER NOT NULL
);
CREATE INDEX snapshot_tombstones_gen ON snapshot_tombstones(gen);

-- Fact rows per file and table, kept by the writer, so per-source counts
-- (`infogap stats`) need no scan of the fact tables.
CREATE TABLE file_rows (
    source_id   INTEGER NOT NULL,
    file_id     INTEGER NOT NULL,
    tbl         TEXT NOT NULL,
    rows        INTEGER NOT NULL,
    PRIMARY KEY (file_id, tbl)
);
INSERT INTO file_rows (source_id, file_id, tbl, rows)
    SELECT MIN(source_id), file_id, 'order_lines', COUNT(*) FROM order_lines GROUP BY file_id;
INSERT INTO file_rows (source_id, file_id, tbl, rows)
    SELECT MIN(source_id), file_id, 'events', COUNT(*) FROM events GROUP BY file_id;
INSERT INTO file_rows (source_id, file_id, tbl, rows)
    SELECT MIN(source_id), file_id, 'feedback', COUNT(*) FROM feedback GROUP BY file_id;
INSERT INTO file_rows (source_id, file_id, tbl, rows)
    SELECT MIN(source_id), file_id, 'campaign_contacts', COUNT(*) FROM campaign_contacts GROUP BY file_id;
INSERT INTO file_rows (source_id, file_id, tbl, rows)
    SELECT MIN(source_id), file_id, 'consents', COUNT(*) FROM consents GROUP BY file_id;
