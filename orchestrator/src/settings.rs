//! Settings: built-in defaults, then the `--config` TOML file, then `ORGSEC_*` environment
//! variables, each later source overriding the earlier ones setting by setting.
//!
//! ```toml
//! database_url = "sqlite://orgsec.db"          # ORGSEC_DATABASE_URL
//! member_role_name = "OrgSecRemediationRole"   # ORGSEC_MEMBER_ROLE_NAME
//! external_id = "orgsec-demo"                  # ORGSEC_EXTERNAL_ID
//! regions = ["us-east-1", "eu-west-1"]         # ORGSEC_REGIONS=us-east-1,eu-west-1
//! listen = "127.0.0.1:7443"                    # ORGSEC_LISTEN
//! tokens_file = "tokens.toml"                  # ORGSEC_TOKENS_FILE
//! sync_interval_seconds = 900                  # ORGSEC_SYNC_INTERVAL (0: serve does not sync)
//! reassess_after_changes = 500                 # ORGSEC_REASSESS_AFTER_CHANGES (0: never)
//! tls_cert_file = "api.crt"                    # ORGSEC_TLS_CERT_FILE (PEM; with the key: HTTPS)
//! tls_key_file = "api.key"                     # ORGSEC_TLS_KEY_FILE
//!
//! [notifications.secops-slack]                 # targets bindings name in `notify`
//! kind = "slack"                               # slack | webhook | splunk (see notify.rs)
//! url = "https://hooks.slack.com/services/..."
//! ```
//!
//! A relative `tokens_file` in the file is relative to the file's folder; from the environment,
//! to the working directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::notify::TargetSettings;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://orgsec.db";
pub const DEFAULT_MEMBER_ROLE_NAME: &str = "OrgSecRemediationRole";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7443";
/// How often `orgsec serve` enrolls new accounts, syncs and rescores, by default.
pub const DEFAULT_SYNC_INTERVAL_SECONDS: u64 = 900;
/// Changes in the monitor's log since the last full assessment that make `orgsec serve` run
/// another, by default.
pub const DEFAULT_REASSESS_AFTER_CHANGES: u64 = 500;
/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "orgsec.toml";

/// The orchestrator's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `sqlite://PATH` (the embedded default) or `postgres://...`.
    pub database_url: String,
    /// The role assumed in each member account.
    pub member_role_name: String,
    /// The ExternalId the member role's trust policy asks for.
    pub external_id: Option<String>,
    /// Regions to assess; empty means the AWS configuration's region only.
    pub regions: Vec<String>,
    /// Where `orgsec serve` listens.
    pub listen: SocketAddr,
    /// The API's tokens (TOML, hashed); `orgsec serve` needs it.
    pub tokens_file: Option<PathBuf>,
    /// Seconds between `orgsec serve`'s rounds of enrollment, sync and scoring; 0 turns the
    /// loop off (the API still serves what the store holds).
    pub sync_interval_seconds: u64,
    /// Changes (remediations, new and deleted resources, newly failing checks) since the last
    /// full assessment after which `orgsec serve` reads every account in full again and
    /// rescores; 0 never does.
    pub reassess_after_changes: u64,
    /// The API's certificate chain and private key (PEM): with both, `orgsec serve` speaks
    /// TLS only; with neither, plain HTTP (for loopback or behind a TLS-terminating proxy).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Notification targets by name (only in the file: `[notifications.NAME]`).
    pub notifications: BTreeMap<String, TargetSettings>,
}

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{setting} = \"{value}\" is not valid: {why}")]
    Invalid { setting: String, value: String, why: String },
}

/// The config file's shape: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    database_url: Option<String>,
    member_role_name: Option<String>,
    external_id: Option<String>,
    regions: Option<Vec<String>>,
    listen: Option<String>,
    tokens_file: Option<PathBuf>,
    sync_interval_seconds: Option<u64>,
    reassess_after_changes: Option<u64>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    #[serde(default)]
    notifications: BTreeMap<String, TargetSettings>,
}

impl Settings {
    /// Loads the settings from `config` (when `required`, a missing file is an error; otherwise
    /// it is skipped) and the environment as `env` reports it.
    pub fn load(
        config: &Path,
        required: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let file = match std::fs::read_to_string(config) {
            Ok(text) => toml::from_str::<File>(&text)
                .map_err(|e| SettingsError::Parse { path: config.to_path_buf(), message: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => File::default(),
            Err(source) => return Err(SettingsError::Read { path: config.to_path_buf(), source }),
        };
        let base = config.parent().unwrap_or(Path::new(""));
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());

        let listen_text = env("ORGSEC_LISTEN")
            .map(|v| ("ORGSEC_LISTEN", v))
            .or(file.listen.map(|v| ("listen", v)))
            .unwrap_or(("listen", DEFAULT_LISTEN.to_string()));
        let listen = listen_text.1.parse::<SocketAddr>().map_err(|_| SettingsError::Invalid {
            setting: listen_text.0.to_string(),
            value: listen_text.1.clone(),
            why: "write an address and port such as 127.0.0.1:7443 or 0.0.0.0:7443 (port 0 picks a free one)".into(),
        })?;

        let regions = match env("ORGSEC_REGIONS") {
            Some(v) => v.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect(),
            None => file.regions.unwrap_or_default(),
        };
        if let Some(bad) = regions.iter().find(|r| !valid_region(r)) {
            return Err(SettingsError::Invalid {
                setting: "regions".into(),
                value: bad.clone(),
                why: "a region is lowercase letters, digits and dashes, such as us-east-1".into(),
            });
        }

        let database_url =
            env("ORGSEC_DATABASE_URL").or(file.database_url).unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(SettingsError::Invalid {
                setting: "database_url".into(),
                value: database_url,
                why: "use sqlite://PATH (the embedded default) or postgres://USER:PASSWORD@HOST/DB".into(),
            });
        }

        let sync_interval_seconds = match env("ORGSEC_SYNC_INTERVAL") {
            Some(v) => v.trim().parse::<u64>().map_err(|_| SettingsError::Invalid {
                setting: "ORGSEC_SYNC_INTERVAL".into(),
                value: v.clone(),
                why: "write a number of seconds, such as 900 (0 turns the sync loop off)".into(),
            })?,
            None => file.sync_interval_seconds.unwrap_or(DEFAULT_SYNC_INTERVAL_SECONDS),
        };
        let reassess_after_changes = match env("ORGSEC_REASSESS_AFTER_CHANGES") {
            Some(v) => v.trim().parse::<u64>().map_err(|_| SettingsError::Invalid {
                setting: "ORGSEC_REASSESS_AFTER_CHANGES".into(),
                value: v.clone(),
                why: "write a number of changes, such as 500 (0 never reassesses)".into(),
            })?,
            None => file.reassess_after_changes.unwrap_or(DEFAULT_REASSESS_AFTER_CHANGES),
        };

        let cert = env("ORGSEC_TLS_CERT_FILE").map(PathBuf::from).or(file.tls_cert_file.map(|p| base.join(p)));
        let key = env("ORGSEC_TLS_KEY_FILE").map(PathBuf::from).or(file.tls_key_file.map(|p| base.join(p)));
        let tls = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (c, _) => {
                let (setting, value) = match c {
                    Some(c) => ("tls_key_file", format!("(missing; tls_cert_file is {})", c.display())),
                    None => ("tls_cert_file", "(missing; tls_key_file is set)".to_string()),
                };
                return Err(SettingsError::Invalid {
                    setting: setting.into(),
                    value,
                    why: "TLS needs both a certificate chain and its private key (PEM files): set both or neither"
                        .into(),
                });
            }
        };

        Ok(Settings {
            tls,
            sync_interval_seconds,
            reassess_after_changes,
            database_url,
            member_role_name: env("ORGSEC_MEMBER_ROLE_NAME")
                .or(file.member_role_name)
                .unwrap_or_else(|| DEFAULT_MEMBER_ROLE_NAME.to_string()),
            external_id: env("ORGSEC_EXTERNAL_ID").or(file.external_id),
            regions,
            listen,
            tokens_file: env("ORGSEC_TOKENS_FILE").map(PathBuf::from).or(file.tokens_file.map(|p| base.join(p))),
            notifications: file.notifications,
        })
    }

    /// Loads the settings with the process environment.
    pub fn from_env(config: &Path, required: bool) -> Result<Settings, SettingsError> {
        Settings::load(config, required, |name| std::env::var(name).ok())
    }
}

fn valid_region(r: &str) -> bool {
    !r.is_empty() && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orgsec.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::load(&path, false, |k| env.get(k).cloned()).map(|mut s| {
            // Relative to the temporary folder: keep only the file name for comparisons.
            s.tokens_file = s.tokens_file.map(|p| p.strip_prefix(dir.path()).map(Path::to_path_buf).unwrap_or(p));
            s
        })
    }

    #[test]
    fn defaults_apply_without_file_or_environment() {
        let s = load(None, &[]).unwrap();
        assert_eq!(s.database_url, "sqlite://orgsec.db");
        assert_eq!(s.member_role_name, "OrgSecRemediationRole");
        assert_eq!((s.external_id, s.regions, s.tokens_file), (None, vec![], None));
        assert_eq!(s.listen.to_string(), "127.0.0.1:7443");
        assert_eq!(s.sync_interval_seconds, 900);
    }

    #[test]
    fn tls_needs_both_files() {
        let s = load(Some("tls_cert_file = \"a.crt\"\ntls_key_file = \"a.key\""), &[]).unwrap();
        let (c, k) = s.tls.expect("tls");
        assert!(c.ends_with("a.crt") && k.ends_with("a.key"));
        let e = load(None, &[("ORGSEC_TLS_CERT_FILE", "/x.crt")]).unwrap_err().to_string();
        assert!(e.contains("both a certificate chain and its private key"), "{e}");
        assert_eq!(load(None, &[]).unwrap().tls, None);
    }

    #[test]
    fn the_sync_interval_comes_from_the_file_or_the_environment() {
        assert_eq!(load(Some("sync_interval_seconds = 60"), &[]).unwrap().sync_interval_seconds, 60);
        assert_eq!(load(None, &[]).unwrap().reassess_after_changes, 500);
        assert_eq!(load(Some("reassess_after_changes = 20"), &[]).unwrap().reassess_after_changes, 20);
        let env = [("ORGSEC_REASSESS_AFTER_CHANGES", "0")];
        assert_eq!(load(Some("reassess_after_changes = 20"), &env).unwrap().reassess_after_changes, 0);
        let bad = load(None, &[("ORGSEC_REASSESS_AFTER_CHANGES", "many")]).unwrap_err().to_string();
        assert!(bad.contains("ORGSEC_REASSESS_AFTER_CHANGES"), "{bad}");
        assert_eq!(
            load(Some("sync_interval_seconds = 60"), &[("ORGSEC_SYNC_INTERVAL", "0")]).unwrap().sync_interval_seconds,
            0
        );
        let e = load(None, &[("ORGSEC_SYNC_INTERVAL", "15m")]).unwrap_err().to_string();
        assert!(e.contains("number of seconds"), "{e}");
    }

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let file = r#"
database_url = "sqlite:///var/lib/orgsec/orgsec.db"
member_role_name = "FileRole"
external_id = "from-file"
regions = ["us-east-1", "eu-west-1"]
listen = "0.0.0.0:9000"
tokens_file = "tokens.toml"
"#;
        let s = load(Some(file), &[]).unwrap();
        assert_eq!(s.database_url, "sqlite:///var/lib/orgsec/orgsec.db");
        assert_eq!((s.member_role_name.as_str(), s.external_id.as_deref()), ("FileRole", Some("from-file")));
        assert_eq!(s.regions, ["us-east-1", "eu-west-1"]);
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.tokens_file, Some(PathBuf::from("tokens.toml")), "relative to the file's folder");

        let s = load(
            Some(file),
            &[
                ("ORGSEC_DATABASE_URL", "postgres://orgsec@db/orgsec"),
                ("ORGSEC_MEMBER_ROLE_NAME", "EnvRole"),
                ("ORGSEC_EXTERNAL_ID", "from-env"),
                ("ORGSEC_REGIONS", "ap-south-1, us-west-2"),
                ("ORGSEC_LISTEN", "127.0.0.1:0"),
                ("ORGSEC_TOKENS_FILE", "/etc/orgsec/tokens.toml"),
            ],
        )
        .unwrap();
        assert_eq!(s.database_url, "postgres://orgsec@db/orgsec");
        assert_eq!((s.member_role_name.as_str(), s.external_id.as_deref()), ("EnvRole", Some("from-env")));
        assert_eq!(s.regions, ["ap-south-1", "us-west-2"]);
        assert_eq!(s.listen.to_string(), "127.0.0.1:0");
        assert_eq!(s.tokens_file, Some(PathBuf::from("/etc/orgsec/tokens.toml")));

        // One variable overrides one setting; an empty one overrides nothing.
        let s = load(Some(file), &[("ORGSEC_EXTERNAL_ID", "x"), ("ORGSEC_REGIONS", "")]).unwrap();
        assert_eq!((s.external_id.as_deref(), s.member_role_name.as_str()), (Some("x"), "FileRole"));
        assert_eq!(s.regions, ["us-east-1", "eu-west-1"]);
    }

    #[test]
    fn errors_name_the_setting_and_what_to_write() {
        let e = load(None, &[("ORGSEC_LISTEN", "7443")]).unwrap_err().to_string();
        assert!(e.starts_with("ORGSEC_LISTEN = \"7443\" is not valid") && e.contains("127.0.0.1:7443"), "{e}");
        let e = load(Some("databse_url = \"x\""), &[]).unwrap_err().to_string();
        assert!(e.contains("unknown field `databse_url`"), "{e}");
        let e = load(None, &[("ORGSEC_DATABASE_URL", "mysql://x")]).unwrap_err().to_string();
        assert!(e.contains("sqlite://PATH"), "{e}");
        let e = load(None, &[("ORGSEC_REGIONS", "US East")]).unwrap_err().to_string();
        assert!(e.contains("us-east-1"), "{e}");
        let missing = Settings::load(Path::new("/nonexistent/orgsec.toml"), true, |_| None).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read the config file /nonexistent/orgsec.toml"));
    }
}
