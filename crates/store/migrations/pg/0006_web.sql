-- PostgreSQL translation of ../0006_web.sql (same version, same tables and
-- columns; types: BIGINT, DOUBLE PRECISION, BYTEA; identity columns).
-- infogap store schema, version 6: the web pages' users and sessions.
--
-- `users` are staff who sign in to the dashboard with a password.
-- `password_hash` is an Argon2id PHC string (salted, slow), NULL until the
-- user has set a password through a one-time setup link; a disabled user
-- keeps their row (the audit trail names them) but cannot sign in.
CREATE TABLE users (
    name          TEXT COLLATE "C" PRIMARY KEY,
    role          TEXT COLLATE "C" NOT NULL,
    department    TEXT COLLATE "C",
    password_hash TEXT COLLATE "C",
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

-- Browser sessions and one-time links. A credential reads
-- `<prefix>_<id>_<secret>` (`igs_` a session, `igl_` a customer's sign-in
-- link, `igu_` a user's password-setup link); only HMAC-SHA256(store
-- secret, secret) is kept, as for API keys. `staff`/`customer` rows are
-- signed-in sessions, `link`/`setup` rows are redeemed once (revoked_at is
-- set by the redemption). A customer's rows go with their erasure.
CREATE TABLE web_sessions (
    id          TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('staff', 'customer', 'link', 'setup')),
    user_name   TEXT COLLATE "C",
    customer_id BIGINT,
    secret_hash BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX web_sessions_user ON web_sessions(user_name);
CREATE INDEX web_sessions_customer ON web_sessions(customer_id);
