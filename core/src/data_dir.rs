//! The data directory holds the SQLite databases, the secret key and the first-run set-up
//! code: only the service's own user may read it (directory 0700, files 0600).

use std::path::Path;

use crate::config::{Config, Mode};

/// Creates `dir` (and missing parents) and makes it private to this user.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
}

/// Before the databases are opened: a private data directory, and the SQLite files created
/// 0600 up front (SQLite gives its -wal and -shm files the database file's mode). Files left
/// readable by an older version are tightened.
pub fn prepare(config: &Config) -> std::io::Result<()> {
    match &config.mode {
        Mode::Embedded { db_path } => {
            create_private_dir(&config.data_dir)?;
            // A database outside the data directory lives where the operator put it; only the
            // files themselves are ours to restrict.
            for file in [db_path.clone(), db_path.with_file_name("jobs.db")] {
                create_private_file(&file)?;
            }
        }
        // Queue mode keeps nothing on disk but the set-up code, which creates the directory
        // when it is needed; workers do not leave empty directories behind.
        Mode::Queue { .. } if !config.data_dir.exists() => return Ok(()),
        Mode::Queue { .. } => set_mode(&config.data_dir, 0o700)?,
    }
    for entry in std::fs::read_dir(&config.data_dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            set_mode(&entry.path(), 0o600)?;
        }
    }
    Ok(())
}

/// Creates an empty file readable by this user only, or tightens an existing one.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        create_private_dir(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?;
    set_mode(path, 0o600)
}

/// Writes `contents` to `path`, readable by this user only, replacing an existing file.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    set_mode(path, 0o600)?;
    f.write_all(contents.as_bytes())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn data_dir_and_files_are_private() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("data");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let old = dir.join("svyazka.db");
        std::fs::write(&old, b"").expect("file");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let config = Config::from_vars(&[("SVYAZKA_DATA_DIR", dir.to_str().expect("utf8"))])
            .expect("config");
        prepare(&config).expect("prepare");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&old), 0o600);
        assert_eq!(mode(&dir.join("jobs.db")), 0o600);
        write_private(&dir.join("setup-code"), "x").expect("write");
        assert_eq!(mode(&dir.join("setup-code")), 0o600);
    }
}
