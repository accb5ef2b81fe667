//! End-to-end tests of the `infogap` binary, one module per command family.
mod common;
mod data;
mod recs;
mod rating;
mod classify;
mod analytics;
mod clv;
mod forecast;
