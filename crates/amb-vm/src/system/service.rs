//! The reserved service names, which of them are deterministic, the trait a host
//! implements them through, and the reasons an effect fails (`spec/system.md` §1).

use crate::value::Value;

/// A service a program can call by its reserved name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// `sys_hash`: BLAKE3 of a value's canonical encoding.
    Hash,
    /// `sys_put`: stores a value, answers its CID.
    Put,
    /// `sys_get`: the value stored under a CID, within the program's scope.
    Get,
    /// `sys_verify`: an Ed25519 signature check under the protocol's rule.
    Verify,
    /// `sys_time`: the host's clock (untrusted).
    Time,
    /// `sys_random`: random bytes (untrusted).
    Random,
    /// `sys_http_get`: an HTTP GET (untrusted, optional, off by default).
    HttpGet,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 7] = [
        Service::Hash,
        Service::Put,
        Service::Get,
        Service::Verify,
        Service::Time,
        Service::Random,
        Service::HttpGet,
    ];

    /// The reserved ambient name.
    pub fn name(self) -> &'static str {
        match self {
            Service::Hash => "sys_hash",
            Service::Put => "sys_put",
            Service::Get => "sys_get",
            Service::Verify => "sys_verify",
            Service::Time => "sys_time",
            Service::Random => "sys_random",
            Service::HttpGet => "sys_http_get",
        }
    }

    /// The service of a reserved name.
    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the service gives the same result (or a failure) for the same
    /// argument, so a verifier computes it again; the others are accepted as signed.
    pub fn is_deterministic(self) -> bool {
        matches!(
            self,
            Service::Hash | Service::Put | Service::Get | Service::Verify
        )
    }
}

/// Whether `name` is a service ambient's name (reserved: it starts with `sys_`).
pub fn is_service_name(name: &str) -> bool {
    name.starts_with("sys_")
}

/// Why an effect failed: the reason of the failure value it brings in
/// (`failure[REASON[]]`, `spec/values.md` §3.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Failure {
    /// Not answered within `effect_timeout_ms`.
    #[error("timeout")]
    Timeout,
    /// The argument or the result is over its size limit.
    #[error("too-large")]
    TooLarge,
    /// Nothing in the program's scope is stored under the CID.
    #[error("not-found")]
    NotFound,
    /// The argument is not of the service's shape (or not a value).
    #[error("bad-argument")]
    BadArgument,
    /// The host does not offer the service.
    #[error("not-offered")]
    NotOffered,
}

impl Failure {
    /// The failure value the program sees.
    pub fn value(self) -> Value {
        Value::Failure(self.to_string())
    }
}

/// What a host offers programs. Implemented by [`super::LocalServices`]; a node
/// reports [`SystemServices::offered`] (`amb info`).
pub trait SystemServices: Send + Sync {
    /// The services this host performs.
    fn offered(&self) -> Vec<Service>;

    /// Performs `service` on `argument`, for the program `scope` (its address, or
    /// any name that keeps one program's stored values apart from another's).
    /// Limits are applied by [`super::perform`], which calls this.
    fn perform(&self, scope: &str, service: Service, argument: &Value) -> Result<Value, Failure>;
}
