-- infogap store schema, version 5: privacy.
--
-- Encryption at rest: personal values move into `secret` columns as
-- AES-256-GCM ciphertexts (see crypto.rs). `identities.value` then holds the
-- keyed blind index of the value (lookups and the uniqueness of a key keep
-- working); `attributes.value` is '' and `attributes.digest` tells a changed
-- value from an unchanged one on re-import; `feedback.text` is NULL. A row
-- whose `secret` is NULL is plaintext (a store written before version 5,
-- encrypted on its first open with a key).
ALTER TABLE identities ADD COLUMN secret BLOB;
ALTER TABLE attributes ADD COLUMN secret BLOB;
ALTER TABLE attributes ADD COLUMN digest TEXT;
ALTER TABLE feedback ADD COLUMN secret BLOB;
-- model blobs hold per-customer parts (keys, histories): sealed whole
ALTER TABLE models ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;

-- Erased identities, by suppression hash only (crypto.rs): a re-imported
-- row with such a key is dropped and counted.
CREATE TABLE suppressions (
    hash        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    erasure_id  INTEGER NOT NULL,
    at          TEXT NOT NULL
) WITHOUT ROWID;

-- Erasures: requested (a customer's own request, waiting for approval),
-- erasing (the store's rows are gone; files are being cleaned), done (with
-- its receipt), rejected. Never holds a personal value.
CREATE TABLE erasures (
    id            INTEGER PRIMARY KEY,
    customer_id   INTEGER NOT NULL,
    status        TEXT NOT NULL,
    mode          TEXT NOT NULL,
    requested_at  TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    finished_at   TEXT,
    receipt       TEXT
);
CREATE INDEX erasures_status ON erasures(status);
