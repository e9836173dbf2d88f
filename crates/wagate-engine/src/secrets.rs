//! The master keys the database's secrets are sealed with: given, or kept in a file beside a
//! SQLite database (made at the first start, never over secrets sealed under a lost key).

use crate::config::Config;
use crate::error::StartError;

/// The master keys secrets are sealed with: `WAGATE_MASTER_KEY`, else, for a SQLite database,
/// the key kept beside it (`wagate.master.key`, made at the first start and said so); a
/// PostgreSQL database shared by several gateways has none unless one is given.
pub fn master_keys(config: &Config) -> Result<wagate_core::seal::Sealer, StartError> {
    master_keys_with(config, true)
}

/// The same; `create`: make the key file when there is none (a gateway's first start). The
/// command line never makes one: without the file it opens nothing sealed, and says so.
pub fn master_keys_with(config: &Config, create: bool) -> Result<wagate_core::seal::Sealer, StartError> {
    use wagate_core::seal::Sealer;
    let previous = config.previous_master_keys.clone();
    if let Some(key) = &config.master_key {
        return Ok(Sealer::new(Some(key.clone()), previous));
    }
    let Some(path) = wagate_store::master_key_path(&config.database_url) else {
        return Ok(Sealer::new(None, previous));
    };
    if !create && !path.exists() {
        return Ok(Sealer::new(None, previous));
    }
    Ok(Sealer::new(Some(key_file(&path)?), previous))
}

/// Before a first start makes a key file: the database must hold no secret sealed under a key
/// that is not given (its key file was lost or moved). A new key would not open them, and the
/// new file would only hide what went missing.
pub(crate) async fn refuse_a_new_key_over_sealed_secrets(config: &Config) -> Result<(), StartError> {
    if config.master_key.is_some() {
        return Ok(());
    }
    let Some(path) = wagate_store::master_key_path(&config.database_url).filter(|p| !p.exists()) else {
        return Ok(());
    };
    if wagate_store::sqlite_file(&config.database_url).is_none_or(|db| !db.exists()) {
        return Ok(());
    }
    let probe = wagate_store::connect(
        &config.database_url,
        &wagate_store::ConnectOptions {
            sealer: wagate_core::seal::Sealer::new(None, config.previous_master_keys.clone()),
            ..Default::default()
        },
    )
    .await?;
    probe.migrate().await?;
    match probe.seal_secrets(false).await {
        Err(wagate_store::StoreError::Sealed(e)) => Err(StartError::Config(format!(
            "the database holds sealed secrets ({e}), and its key file {} is missing: put the file back, or set WAGATE_MASTER_KEY to the key it held; no new key was made",
            path.display()
        ))),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(()),
    }
}

/// The master key kept in a file, made there (readable by its owner only) the first time, and
/// said so in the log.
pub fn key_file(path: &std::path::Path) -> Result<wagate_core::seal::MasterKey, StartError> {
    use wagate_core::seal::MasterKey;
    let shown = path.display();
    let key = match std::fs::read_to_string(path) {
        Ok(text) => {
            MasterKey::parse(&text).map_err(|why| StartError::Config(format!("the master key in {shown} {why}")))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = MasterKey::generate();
            write_private(path, &text).map_err(|e| {
                StartError::Config(format!(
                    "cannot write a master key to {shown}: {e}; set WAGATE_MASTER_KEY instead"
                ))
            })?;
            tracing::warn!(path = %shown, "no WAGATE_MASTER_KEY: generated one, which seals the secrets kept in the database; keep it with the database and back it up (without it they cannot be read)");
            MasterKey::parse(&text).map_err(StartError::Config)?
        }
        Err(e) => {
            return Err(StartError::Config(format!(
                "cannot read the master key in {shown}: {e}"
            )))
        }
    };
    Ok(key)
}

/// Writes a new file only its owner can read.
pub fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(format!("{text}\n").as_bytes())?;
    file.sync_all()
}
