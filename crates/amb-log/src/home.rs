//! The node's home directory: its key, its configuration and its store.
//!
//! ```text
//! <home>/key          the Ed25519 secret seed: 32 raw bytes, mode 0600
//! <home>/api_token    the HTTP API's bearer token: 64 hex digits, mode 0600
//! <home>/config.toml  the configuration (below)
//! <home>/store.redb   the store (the `store` setting can move it)
//! ```
//!
//! The home is, in order: the `--home DIR` flag, the `AMB_HOME` variable, or `amb`
//! in the platform's data directory (`$XDG_DATA_HOME/amb`, else
//! `~/.local/share/amb` on Linux). [`Home::init`] creates the key and the API token
//! once; nothing here ever writes over a key or a token that exists. The token
//! guards a node's API (`spec/network.md` §7): always beyond loopback, on loopback
//! when the `api_token` setting asks for it; the CLI sends it with `--node`.
//!
//! `config.toml` holds the store's place and the peer node's settings (the `[node]`
//! table, read by `amb-net`, documented in `spec/network.md`); unknown keys are
//! refused, so a typo is reported instead of ignored:
//!
//! ```toml
//! # Where the store lives: a path relative to the home directory, or absolute.
//! store = "store.redb"
//!
//! [node]
//! listen = ["/ip4/0.0.0.0/tcp/4001"]
//! ```

use std::{
    ffi::OsString,
    fs::{self, File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
};

use crate::keys::SigningKey;

use crate::store::{Store, StoreError};

/// The environment variable naming the home directory.
pub const HOME_ENV: &str = "AMB_HOME";

/// The key file's name in the home directory.
pub const KEY_FILE: &str = "key";
/// The API token file's name in the home directory.
pub const API_TOKEN_FILE: &str = "api_token";
/// The configuration file's name in the home directory.
pub const CONFIG_FILE: &str = "config.toml";
/// The store's default file name in the home directory.
pub const DEFAULT_STORE_FILE: &str = "store.redb";

/// What `amb init` writes into a new `config.toml`.
const DEFAULT_CONFIG: &str = "\
# amb node configuration, written by `amb init`.

# Where the store lives: a path relative to this directory, or absolute.
store = \"store.redb\"

# The peer node (`amb node`); every setting is optional, flags and AMB_NODE_*
# variables override them (spec/network.md, \"Configuration\").
[node]
# listen = [\"/ip4/0.0.0.0/tcp/4001\"]
# api = \"127.0.0.1:4080\"
# peers = []
# mdns = true
# max_connections = 64
# api_token = false  (on loopback; beyond loopback the token is always required)
";

/// Where a home directory was chosen from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HomeSource {
    /// The `--home` flag.
    Flag,
    /// The `AMB_HOME` variable.
    Env,
    /// The platform's data directory.
    Default,
}

/// A home directory, resolved but not necessarily initialized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    dir: PathBuf,
    source: HomeSource,
}

/// The settings of `config.toml`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The store's file, relative to the home directory unless absolute.
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// The `[node]` table: the peer node's settings, checked by the node when it starts.
    #[serde(default)]
    pub node: Option<toml::Table>,
}

fn default_store() -> PathBuf {
    PathBuf::from(DEFAULT_STORE_FILE)
}

impl Default for Config {
    fn default() -> Config {
        Config {
            store: default_store(),
            node: None,
        }
    }
}

/// An initialized home, loaded: the node's key and settings.
#[derive(Debug)]
pub struct Loaded {
    /// The node's signing key.
    pub key: SigningKey,
    /// The settings.
    pub config: Config,
    /// The store's file (the `store` setting resolved against the home).
    pub store_path: PathBuf,
}

/// What [`Home::init`] did.
#[derive(Debug)]
pub enum Init {
    /// A new key was made (and the configuration and store, where missing).
    Created(Loaded),
    /// The key was there already and was kept; a missing configuration or store was
    /// written.
    AlreadyInitialized {
        /// The existing key file.
        key_path: PathBuf,
        /// The home as loaded.
        loaded: Loaded,
    },
}

impl Init {
    /// The home as loaded, either way.
    pub fn loaded(&self) -> &Loaded {
        match self {
            Init::Created(loaded) | Init::AlreadyInitialized { loaded, .. } => loaded,
        }
    }

    /// Whether a new key was made.
    pub fn created(&self) -> bool {
        matches!(self, Init::Created(_))
    }
}

/// Why a home could not be found, initialized or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// No flag, no variable, and no data directory on this platform.
    #[error("no home directory: pass --home DIR or set {HOME_ENV}")]
    NoDefault,
    /// There is no key: `amb init` has not been run for this home.
    #[error("not initialized: run `amb init` (looked in {})", dir.display())]
    NotInitialized {
        /// The home directory.
        dir: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not a 32-byte seed.
    #[error(
        "corrupt key file {}: {len} bytes, expected 32 (it is not replaced; \
         move it away to make a new key with `amb init`)",
        path.display()
    )]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The key file can be read by other users.
    #[error(
        "key file {} is accessible by other users (mode {mode:04o}); run `chmod 600` on it",
        path.display()
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The configuration is missing while the key is there.
    #[error("missing {}: run `amb init` to write the default one", path.display())]
    NoConfig {
        /// Where it should be.
        path: PathBuf,
    },
    /// The configuration is not valid.
    #[error("invalid configuration {}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The API token file is unusable (empty, not text, or readable by others).
    #[error("API token file {}: {problem}", path.display())]
    ApiToken {
        /// The token file.
        path: PathBuf,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// The store could not be created.
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T, E = HomeError> = std::result::Result<T, E>;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HomeError {
    let path = path.to_path_buf();
    move |source| HomeError::Io {
        action,
        path,
        source,
    }
}

impl Home {
    /// The home directory: `flag` (`--home`), else `AMB_HOME`, else the platform's data
    /// directory. An empty `AMB_HOME` counts as unset.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Home> {
        Home::resolve_from(flag, std::env::var_os(HOME_ENV), dirs::data_dir())
    }

    /// [`Home::resolve`] with the environment given.
    pub fn resolve_from(
        flag: Option<PathBuf>,
        env: Option<OsString>,
        data_dir: Option<PathBuf>,
    ) -> Result<Home> {
        let (dir, source) = if let Some(dir) = flag {
            (dir, HomeSource::Flag)
        } else if let Some(dir) = env.filter(|v| !v.is_empty()) {
            (PathBuf::from(dir), HomeSource::Env)
        } else if let Some(data) = data_dir {
            (data.join("amb"), HomeSource::Default)
        } else {
            return Err(HomeError::NoDefault);
        };
        let dir = std::path::absolute(&dir).map_err(io("resolving", &dir))?;
        Ok(Home { dir, source })
    }

    /// A home at a given directory.
    pub fn at(dir: impl Into<PathBuf>) -> Home {
        Home {
            dir: dir.into(),
            source: HomeSource::Flag,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the directory was chosen from.
    pub fn source(&self) -> HomeSource {
        self.source
    }

    /// The key file.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// The API token file.
    pub fn api_token_path(&self) -> PathBuf {
        self.dir.join(API_TOKEN_FILE)
    }

    /// The API's bearer token, or `None` when the home has no token file (a home
    /// initialized before tokens existed: `amb init` adds one). A token file that is
    /// empty, not UTF-8 or accessible by other users is an error.
    pub fn api_token(&self) -> Result<Option<String>> {
        let path = self.api_token_path();
        let problem = |problem: String| HomeError::ApiToken {
            path: path.clone(),
            problem,
        };
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("reading", &path)(e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(&path).map_err(io("reading", &path))?;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(problem(format!(
                    "accessible by other users (mode {mode:04o}); run `chmod 600` on it"
                )));
            }
        }
        let token = String::from_utf8(bytes)
            .map_err(|_| problem("not UTF-8 text".into()))?
            .trim()
            .to_string();
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(problem(
                "not one word (delete it and run `amb init` to make a new one)".into(),
            ));
        }
        Ok(Some(token))
    }

    /// Creates the home: the directory, `config.toml` and the store where missing, and
    /// the key unless one exists. An existing key is never replaced: it is loaded (and
    /// a corrupt one is an error).
    pub fn init(&self) -> Result<Init> {
        create_dir(&self.dir)?;
        let config_path = self.config_path();
        if !config_path.exists() {
            write_new(&self.dir, CONFIG_FILE, DEFAULT_CONFIG.as_bytes(), 0o644)?;
        }
        let key_path = self.key_path();
        let created = if key_path.exists() {
            false
        } else {
            let key = SigningKey::generate();
            write_new(&self.dir, KEY_FILE, &key.to_seed(), 0o600)?
        };
        if !self.api_token_path().exists() {
            write_new(&self.dir, API_TOKEN_FILE, new_token().as_bytes(), 0o600)?;
        }
        let loaded = self.load()?;
        if !loaded.store_path.exists() {
            match Store::create(&loaded.store_path) {
                Ok(_) | Err(StoreError::Exists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(if created {
            Init::Created(loaded)
        } else {
            Init::AlreadyInitialized { key_path, loaded }
        })
    }

    /// Loads an initialized home: the key and the configuration.
    pub fn load(&self) -> Result<Loaded> {
        let key_path = self.key_path();
        let key = match read_key(&key_path) {
            Err(HomeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(HomeError::NotInitialized {
                    dir: self.dir.clone(),
                });
            }
            other => other?,
        };
        let config_path = self.config_path();
        let config = match fs::read(&config_path) {
            Ok(bytes) => parse_config(&config_path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(HomeError::NoConfig { path: config_path });
            }
            Err(e) => return Err(io("reading", &config_path)(e)),
        };
        let store_path = self.dir.join(&config.store);
        Ok(Loaded {
            key,
            config,
            store_path,
        })
    }
}

fn parse_config(path: &Path, bytes: &[u8]) -> Result<Config> {
    let invalid = |message: String| HomeError::Config {
        path: path.into(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
    let config: Config = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if config.store.as_os_str().is_empty() {
        return Err(invalid("`store` is empty".into()));
    }
    Ok(config)
}

fn read_key(path: &Path) -> Result<SigningKey> {
    let mut file = File::open(path).map_err(io("reading", path))?;
    let meta = file.metadata().map_err(io("reading", path))?;
    if meta.len() != 32 {
        return Err(HomeError::BadKey {
            path: path.into(),
            len: meta.len(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(HomeError::KeyPermissions {
                path: path.into(),
                mode,
            });
        }
    }
    let mut seed = [0u8; 32];
    std::io::Read::read_exact(&mut file, &mut seed).map_err(io("reading", path))?;
    Ok(SigningKey::from_seed(&seed))
}

/// A new API token: 32 bytes from the operating system's random source, as 64
/// lowercase hex digits and a newline.
fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    token.push('\n');
    token
}

fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io("creating", dir))
}

/// Writes `dir/name` atomically and only if it does not exist: the bytes go to a
/// temporary file (synced), which is then linked to the name — a link, unlike a
/// rename, fails when the name exists, so a concurrent `init` cannot replace a key.
/// Returns `false` when the name already existed (nothing is written).
fn write_new(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<bool> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    // A temporary file left by a crashed init of this same pid is stale.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = options.open(&tmp).map_err(io("creating", &tmp))?;
        file.write_all(bytes).map_err(io("writing", &tmp))?;
        file.sync_all().map_err(io("writing", &tmp))?;
        drop(file);
        match fs::hard_link(&tmp, &path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            // A file system without links: rename, which is atomic but would replace a
            // file created since the check just above.
            Err(_) if !path.exists() => fs::rename(&tmp, &path)
                .map(|()| true)
                .map_err(io("writing", &path)),
            Err(e) => Err(io("writing", &path)(e)),
        }
    })();
    let _ = fs::remove_file(&tmp);
    let written = result?;
    if written {
        // Make the new name durable.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let home = Home::at(dir.path().join("home"));
        (dir, home)
    }

    #[test]
    fn resolve_prefers_flag_then_env_then_data_dir() {
        let flag = Some(PathBuf::from("/f"));
        let env = Some(OsString::from("/e"));
        let data = Some(PathBuf::from("/d"));
        let at = |h: Home| (h.dir().to_path_buf(), h.source());
        let r = |f: &Option<PathBuf>, e: &Option<OsString>, d: &Option<PathBuf>| {
            at(Home::resolve_from(f.clone(), e.clone(), d.clone()).expect("resolves"))
        };
        assert_eq!(r(&flag, &env, &data), ("/f".into(), HomeSource::Flag));
        assert_eq!(r(&None, &env, &data), ("/e".into(), HomeSource::Env));
        assert_eq!(
            r(&None, &None, &data),
            ("/d/amb".into(), HomeSource::Default)
        );
        let empty = Some(OsString::new());
        assert_eq!(
            r(&None, &empty, &data),
            ("/d/amb".into(), HomeSource::Default)
        );
        assert!(matches!(
            Home::resolve_from(None, None, None),
            Err(HomeError::NoDefault)
        ));
        // Relative paths are made absolute.
        let rel = r(&Some("rel".into()), &None, &None).0;
        assert!(rel.is_absolute() && rel.ends_with("rel"), "{rel:?}");
    }

    #[test]
    fn init_creates_once_and_never_replaces_the_key() {
        let (_dir, home) = home();
        assert!(matches!(home.load(), Err(HomeError::NotInitialized { .. })));
        let first = home.init().expect("init");
        assert!(first.created());
        let key = fs::read(home.key_path()).expect("key");
        assert_eq!(key.len(), 32);
        assert_eq!(first.loaded().key.to_seed()[..], key[..]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(home.key_path())
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The written config is the default one: the store's place, and a `[node]`
        // table whose settings are all commented out.
        let config = &first.loaded().config;
        assert_eq!(config.store, Config::default().store);
        assert!(config.node.as_ref().is_some_and(toml::Table::is_empty));
        assert!(first.loaded().store_path.exists());
        Store::open(&first.loaded().store_path).expect("the store opens");

        // The API token: 64 hex digits, 0600, kept by a later init.
        let token = home.api_token().expect("token").expect("a token file");
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(home.api_token_path())
                .expect("token")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let second = home.init().expect("second init");
        assert!(!second.created());
        assert_eq!(fs::read(home.key_path()).expect("key"), key);
        assert_eq!(home.api_token().expect("token"), Some(token));
        assert_eq!(
            second.loaded().key.public_key(),
            first.loaded().key.public_key()
        );
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(home.dir())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
    }

    #[test]
    fn api_tokens_missing_exposed_or_empty() {
        let (_dir, home) = home();
        home.init().expect("init");
        let token = home.api_token().expect("token").expect("a token file");
        // A home without a token file (made before tokens) has none; init adds one.
        fs::remove_file(home.api_token_path()).expect("remove");
        assert_eq!(home.api_token().expect("no token"), None);
        home.init().expect("init");
        let new = home.api_token().expect("token").expect("a new token");
        assert_ne!(new, token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = home.api_token_path();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
            let err = home.api_token().expect_err("exposed token");
            assert!(err.to_string().contains("chmod 600"), "{err}");
            fs::write(&path, "  \n").expect("write");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
            let err = home.api_token().expect_err("empty token");
            assert!(err.to_string().contains("not one word"), "{err}");
        }
    }

    #[test]
    fn corrupt_or_exposed_keys_and_bad_configs_are_clear_errors() {
        let (_dir, home) = home();
        home.init().expect("init");
        let key = fs::read(home.key_path()).expect("key");

        fs::write(home.config_path(), "stor = 1\n").expect("write");
        let err = home.load().expect_err("unknown key");
        assert!(matches!(err, HomeError::Config { .. }), "{err}");
        assert!(err.to_string().contains("stor"), "{err}");
        fs::write(home.config_path(), "store = \"\"\n").expect("write");
        assert!(matches!(home.load(), Err(HomeError::Config { .. })));
        fs::write(home.config_path(), [0xff, 0xfe]).expect("write");
        assert!(matches!(home.load(), Err(HomeError::Config { .. })));
        fs::remove_file(home.config_path()).expect("remove");
        assert!(matches!(home.load(), Err(HomeError::NoConfig { .. })));
        // init writes the missing config and keeps the key.
        assert!(!home.init().expect("init").created());
        assert_eq!(fs::read(home.key_path()).expect("key"), key);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(home.key_path(), fs::Permissions::from_mode(0o644)).expect("chmod");
            let err = home.load().expect_err("exposed key");
            assert!(
                matches!(err, HomeError::KeyPermissions { mode: 0o644, .. }),
                "{err}"
            );
            fs::set_permissions(home.key_path(), fs::Permissions::from_mode(0o600)).expect("chmod");
        }

        fs::write(home.key_path(), b"short").expect("write");
        let err = home.load().expect_err("short key");
        assert!(matches!(err, HomeError::BadKey { len: 5, .. }), "{err}");
        // init refuses too, and leaves the corrupt file alone.
        assert!(matches!(home.init(), Err(HomeError::BadKey { .. })));
        assert_eq!(fs::read(home.key_path()).expect("key"), b"short");
    }

    #[test]
    fn write_new_never_replaces() {
        let (dir, _) = home();
        assert!(write_new(dir.path(), "f", b"one", 0o600).expect("write"));
        assert!(!write_new(dir.path(), "f", b"two", 0o600).expect("write"));
        assert_eq!(fs::read(dir.path().join("f")).expect("read"), b"one");
    }
}
