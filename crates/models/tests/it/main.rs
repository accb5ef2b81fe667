//! Integration tests of infogap-models: one module per model family.
mod bayes;
mod classify;
mod clv;
mod forecast;
mod forecast_grid;
mod rating;
mod recs;
mod regress;
mod segment;
