//! Backend-generic conformance suite (placeholder).
