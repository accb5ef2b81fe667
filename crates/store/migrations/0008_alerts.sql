-- infogap store schema, version 8: alerts raised by the `[[rule]]`s.
--
-- One row per rule, customer and snapshot generation (the unique key makes
-- a repeated evaluation of the same change a no-op). `detail` holds
-- numbers and names only (a probability, a segment, a purpose, an
-- amount), never a personal value. The baseline the next evaluation
-- compares with is the setting `alerts.baseline`, written in the same
-- transaction. A customer's alerts go with their erasure.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rule        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    detail      TEXT NOT NULL,
    UNIQUE (rule, customer_id, generation)
);
CREATE INDEX alerts_customer ON alerts (customer_id);
