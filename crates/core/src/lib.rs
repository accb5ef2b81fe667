//! infogap-core: the domain vocabulary every other crate shares.
//!
//! Newtypes that are parsed once and trusted afterwards ([`ids::Email`],
//! [`ids::Phone`], [`ids::CustomerKey`]), typed cell values and their parsing
//! ([`value`]), the import configuration with line-numbered errors
//! ([`config`]), and the analytical [`dataset::Dataset`] snapshot the model
//! families consume. No I/O beyond reading the config file.

pub mod access;
pub mod config;
pub mod dataset;
pub mod ids;
pub mod privacy;
pub mod value;
