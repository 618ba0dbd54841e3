//! One module per `amb` subcommand (`car` holds `export` and `import`), and the
//! `--json` form of their failures (`json_error`).

pub(crate) mod car;
pub(crate) mod compile;
pub(crate) mod completions;
pub(crate) mod deploy;
pub(crate) mod explore;
pub(crate) mod fmt;
pub(crate) mod info;
pub(crate) mod init;
pub(crate) mod inspect;
pub(crate) mod json_error;
pub(crate) mod log;
pub(crate) mod ls;
pub(crate) mod node;
pub(crate) mod reduce;
pub(crate) mod run;
pub(crate) mod ui;
pub(crate) mod value;
pub(crate) mod verify;

/// Leaves the normal form, which can be large, out of a result when `quiet`
/// (`--quiet` of `verify`, `import`, `value`).
pub(crate) fn quiet(result: &mut serde_json::Value, quiet: bool) {
    if let (true, Some(fields)) = (quiet, result.as_object_mut()) {
        fields.shift_remove("normal_form");
    }
}
