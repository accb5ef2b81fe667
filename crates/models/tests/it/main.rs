//! Integration tests of infogap-models: one module per model family.
mod recs;
mod rating;
mod classify;
mod regress;
mod segment;
mod bayes;
mod clv;
mod forecast;
