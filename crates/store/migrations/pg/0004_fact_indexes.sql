-- PostgreSQL translation of ../0004_fact_indexes.sql (same version, same tables and
-- columns; types: BIGINT, DOUBLE PRECISION, BYTEA; identity columns).
-- infogap store schema, version 4: facts by identity.
--
-- The API reads one customer's facts per request (`GET /v1/customers/{id}`,
-- its timeline): without these, each read scanned every event, feedback,
-- campaign contact and consent (9 ms per view on the demo store). Order
-- lines are reached through their order (`order_lines_order`), so the
-- largest table gets no new index and imports keep their speed.
CREATE INDEX events_identity ON events(identity_id);
CREATE INDEX feedback_identity ON feedback(identity_id);
CREATE INDEX campaign_contacts_identity ON campaign_contacts(identity_id);
CREATE INDEX consents_identity ON consents(identity_id);
