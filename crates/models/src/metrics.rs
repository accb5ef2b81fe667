//! Evaluation metrics, one submodule per task, so every family and every
//! `eval` command computes a metric the same single way.

pub mod classification;
pub mod ranking;
pub mod rating;
pub mod regression;
