-- infogap store schema, version 3: API keys and customer tokens.
--
-- A key is `igk_<id>_<secret>` (a customer token `igc_<id>_<secret>`); only
-- HMAC-SHA256(store secret, secret) is kept, so the store file never holds a
-- usable credential. `id` is public (it names the key in lists and audit).
-- The audit trail lives in its own database beside the store (`<db>.audit`)
-- so its group commits never wait behind an import's write transaction.

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('key', 'customer')),
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    department  TEXT,
    source      TEXT,
    customer_id INTEGER,
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_kind ON api_keys(kind, created_at);
