//! End-to-end tests: data (placeholder).
