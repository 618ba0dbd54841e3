//! `amb ui [--home DIR] [--api HOST:PORT]`: the time-travel inspector over a local
//! store, with no peer (see `daemon` and `inspector`).

pub(crate) use crate::daemon::{UiArgs as Args, ui as run};
