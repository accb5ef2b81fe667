//! End-to-end tests of the `infogap` binary, one module per command family.
mod analytics;
mod backup;
mod classify;
mod clv;
mod common;
mod data;
mod forecast;
mod privacy;
mod privacy_aggregate;
mod privacy_consent;
mod privacy_export;
mod rating;
mod recs;
mod reference;
mod share;
mod snapshot;
