//! One module per `amb` subcommand.

pub(crate) mod compile;
pub(crate) mod fmt;
