//! End-to-end tests: classify (placeholder).
