//! `wagate backup DIR` and `wagate restore DIR`: a SQLite gateway's databases (a consistent copy
//! each, taken while it runs) and its locally stored media; the master key stays where it is,
//! and the backup says where.

use std::path::Path;

use anyhow::{bail, Context};
use wagate_engine::config::Config;

/// Copies the files of a directory tree that are not in `to` yet (media files never change once
/// written); returns how many were copied.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let mut copied = 0;
    if !from.exists() {
        return Ok(0);
    }
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copied += copy_tree(&entry.path(), &target)?;
        } else if !target.exists() {
            std::fs::copy(entry.path(), &target).with_context(|| format!("copying {}", entry.path().display()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// `wagate backup DIR`.
pub async fn backup(config: &Config, dir: &Path) -> anyhow::Result<()> {
    if wagate_store::sqlite_file(&config.database_url).is_none() {
        bail!(
            "{} is not a SQLite file: back up PostgreSQL with pg_dump (see the README's Operations section)",
            config.database_url
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (main, journal) = wagate_store::backup_databases(&config.database_url, dir).await?;
    // After the databases: every file a stored row names is whole by then.
    let media = match config.media.store.as_str() {
        "local" => {
            let n = copy_tree(&config.media.dir, &dir.join("media"))?;
            format!("{n} media files from {}", config.media.dir.display())
        }
        "database" => "media: in the database".to_string(),
        other => format!("media: kept in {other} (back up the bucket itself)"),
    };
    let key = match wagate_store::master_key_path(&config.database_url) {
        Some(p) if p.exists() && std::env::var("WAGATE_MASTER_KEY").is_err() => format!("the file {}", p.display()),
        _ => "WAGATE_MASTER_KEY (or the file it names)".to_string(),
    };
    let note = format!(
        "wagate backup of {}\n\nwagate.db, wagate.journal.db: the databases (restore with `wagate restore DIR`)\n{media}\n\nThe master key is NOT in this backup: it is {key}.\nKeep it apart from this directory and safe; without it the sealed secrets (tokens, app secrets,\nhook secrets) in the databases cannot be read.\n",
        config.database_url
    );
    std::fs::write(dir.join("README.txt"), note)?;
    println!(
        "backed up {} and {} into {} ({media}); the master key is {key}: keep it apart, safe",
        main.file_name().unwrap_or_default().to_string_lossy(),
        journal.file_name().unwrap_or_default().to_string_lossy(),
        dir.display()
    );
    Ok(())
}

/// `wagate restore DIR`: refuses to overwrite a database in place.
pub async fn restore(config: &Config, dir: &Path) -> anyhow::Result<()> {
    let (main, journal) = wagate_store::restore_databases(dir, &config.database_url)?;
    let media = match config.media.store.as_str() {
        "local" => copy_tree(&dir.join("media"), &config.media.dir)?,
        _ => 0,
    };
    println!(
        "restored {} and {} ({media} media files); start the gateway with the master key it had",
        main.display(),
        journal.display()
    );
    Ok(())
}
