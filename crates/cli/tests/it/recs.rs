//! End-to-end tests: recs (placeholder).
