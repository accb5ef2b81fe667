//! End-to-end tests: clv (placeholder).
