//! `amb node`: run a peer (see `daemon`).

pub(crate) use crate::daemon::{Args, run};
