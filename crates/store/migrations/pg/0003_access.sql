-- PostgreSQL translation of ../0003_access.sql (same version, same tables and
-- columns; types: BIGINT, DOUBLE PRECISION, BYTEA; identity columns).
-- infogap store schema, version 3: API keys and customer tokens.
--
-- A key is `igk_<id>_<secret>` (a customer token `igc_<id>_<secret>`); only
-- HMAC-SHA256(store secret, secret) is kept, so the store file never holds a
-- usable credential. `id` is public (it names the key in lists and audit).
-- The audit trail lives in its own database beside the store (`<db>.audit`)
-- so its group commits never wait behind an import's write transaction.

CREATE TABLE api_keys (
    id          TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('key', 'customer')),
    name        TEXT COLLATE "C" NOT NULL,
    role        TEXT COLLATE "C" NOT NULL,
    department  TEXT COLLATE "C",
    source      TEXT COLLATE "C",
    customer_id BIGINT,
    secret_hash BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_kind ON api_keys(kind, created_at);
