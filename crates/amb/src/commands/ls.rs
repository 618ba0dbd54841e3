//! `amb ls [--node URL] [--json]`: the programs a store holds (or, with `--node`, a
//! running node: its program list route, `GET /v1/programs`), one a line with its
//! address, name, status, events, steps and creation time. The statuses are the
//! inspector's (`inspector::list`): `complete`, `stuck`, `running` or `failed`.

use std::{
    io::{BufWriter, Write},
    process::ExitCode,
    time::Duration,
};

use serde_json::{Value, json};

use crate::{client::NodeArgs, inspector::list, options::Global};

/// Arguments of `amb ls`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    let entries = match global.remote() {
        Some(node) => remote_entries(&node)?,
        None => local_entries(global)?,
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    if global.json {
        writeln!(out, "{}", json!({ "programs": entries }))?;
    } else if entries.is_empty() {
        writeln!(out, "no programs (`amb run FILE` records one)")?;
    } else {
        writeln!(
            out,
            "{:<67} {:<16} {:<8} {:>8} {:>8}  created",
            "address", "name", "status", "events", "steps"
        )?;
        for entry in &entries {
            writeln!(
                out,
                "{:<67} {:<16} {:<8} {:>8} {:>8}  {}",
                entry["address"].as_str().unwrap_or("?"),
                entry["name"].as_str().unwrap_or("-"),
                entry["status"].as_str().unwrap_or("?"),
                entry["events"].to_string(),
                entry["steps"].to_string(),
                entry["created"].as_u64().map_or("-".to_string(), utc),
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The entries of the home's store, computed as the inspector's list computes them
/// (a local store's runs are written whole by `amb run`, so a run without a value is
/// over: stuck).
fn local_entries(global: &Global) -> anyhow::Result<Vec<Value>> {
    let store = global.home().open_store()?;
    let counted = list::Counted::default();
    let known = list::Known {
        over: true,
        failed: false,
    };
    store
        .programs()?
        .into_iter()
        .map(|program| Ok(list::entry(&store, &counted, program, known)?))
        .collect()
}

/// Every entry of the node's program list, page after page.
pub(crate) fn remote_entries(node: &NodeArgs) -> anyhow::Result<Vec<Value>> {
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            None => "/v1/programs?limit=1000".to_string(),
            Some(a) => format!("/v1/programs?limit=1000&after={a}"),
        };
        let mut page = node.get(&path, Duration::from_secs(60))?;
        if let Some(list) = page["programs"].as_array_mut() {
            entries.append(list);
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return Ok(entries),
        }
    }
}

/// A time in milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` UTC.
fn utc(millis: u64) -> String {
    let seconds = millis / 1000;
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_796_601_599_000), "2026-12-06 23:59:59");
    }
}
