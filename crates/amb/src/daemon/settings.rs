//! The HTTP server's bounds (`spec/network.md` §1 and §7): the `api_*` keys of
//! the `[node]` table and their `AMB_NODE_API_*` variables, and the inspector's
//! `timeline_cache_mb` (`AMB_NODE_TIMELINE_CACHE_MB`). They belong to the
//! binary (amb-net knows no HTTP), so they are taken out of the table before
//! amb-net reads the rest; like its keys, a malformed value is refused at start,
//! naming the key.

use std::time::Duration;

/// The API server's bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiSettings {
    /// The longest a connection may take to send a request's head, counted from
    /// when it connects or from the end of the previous answer: so it is also how
    /// long an idle kept-alive connection stays open. Past it the connection is
    /// closed.
    pub(crate) header_timeout: Duration,
    /// The longest a request's body may take to arrive: 408.
    pub(crate) body_timeout: Duration,
    /// The largest request body: 413.
    pub(crate) max_body_bytes: u64,
    /// The largest `wait_ms` of a value request: 400.
    pub(crate) max_wait: Duration,
    /// The most requests handled at once, open event streams included: 503.
    pub(crate) max_requests: usize,
    /// The memory the inspector's timelines may take (`timeline_cache_mb`).
    pub(crate) timeline_cache_bytes: usize,
}

/// The keys, in the order of [`ApiSettings::from_values`], with their defaults.
const KEYS: [(&str, u64); 6] = [
    ("api_header_timeout_secs", 10),
    ("api_body_timeout_secs", 30),
    ("api_max_body_bytes", 2 << 20),
    ("api_max_wait_ms", 300_000),
    ("api_max_requests", 64),
    ("timeline_cache_mb", 256),
];

impl Default for ApiSettings {
    fn default() -> ApiSettings {
        ApiSettings::from_values(KEYS.map(|(_, default)| default))
    }
}

impl ApiSettings {
    fn from_values([header, body, bytes, wait, requests, timelines]: [u64; 6]) -> ApiSettings {
        ApiSettings {
            header_timeout: Duration::from_secs(header),
            body_timeout: Duration::from_secs(body),
            max_body_bytes: bytes,
            max_wait: Duration::from_millis(wait),
            max_requests: usize::try_from(requests).unwrap_or(usize::MAX),
            timeline_cache_bytes: usize::try_from(timelines.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
        }
    }

    /// Takes the `api_*` bound keys out of `table` (what remains is amb-net's),
    /// then lets `AMB_NODE_<KEY>` variables (as `env` gives them) override each.
    /// Every value is a positive integer.
    pub(crate) fn take(
        table: Option<&mut toml::Table>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiSettings, String> {
        let mut values = KEYS.map(|(_, default)| default);
        let mut table = table;
        for (value, (key, _)) in values.iter_mut().zip(KEYS) {
            if let Some(given) = table.as_mut().and_then(|t| t.remove(key)) {
                *value = given
                    .as_integer()
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        format!(
                            "config.toml [node]: `{key}` must be a positive integer, not {given}"
                        )
                    })?;
            }
            let variable = key.to_uppercase();
            if let Some(given) = env(&variable) {
                *value = given.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("AMB_NODE_{variable}: `{given}` is not a positive integer")
                })?;
            }
        }
        Ok(ApiSettings::from_values(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_taken_from_the_table_and_variables_win() {
        let mut table: toml::Table =
            toml::from_str("api_max_requests = 3\napi_max_wait_ms = 10\nmdns = false").unwrap();
        let settings = ApiSettings::take(Some(&mut table), |k| {
            (k == "API_MAX_WAIT_MS").then(|| "20".to_string())
        })
        .unwrap();
        assert_eq!(settings.max_requests, 3);
        assert_eq!(settings.max_wait, Duration::from_millis(20));
        assert_eq!(
            settings.header_timeout,
            ApiSettings::default().header_timeout
        );
        // What remains is amb-net's.
        assert_eq!(table.keys().collect::<Vec<_>>(), ["mdns"]);

        let mut zero: toml::Table = toml::from_str("api_max_requests = 0").unwrap();
        let error = ApiSettings::take(Some(&mut zero), |_| None).unwrap_err();
        assert!(error.contains("api_max_requests"), "{error}");
        let error = ApiSettings::take(None, |k| {
            (k == "API_BODY_TIMEOUT_SECS").then(|| "soon".to_string())
        })
        .unwrap_err();
        assert!(error.contains("AMB_NODE_API_BODY_TIMEOUT_SECS"), "{error}");
    }
}
