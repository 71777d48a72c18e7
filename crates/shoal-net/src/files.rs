//! Reading and writing key material with safe permissions.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{NetError, Result};

/// Writes `contents` to `path` atomically (temporary file + rename), the
/// file readable and writable by its owner only (mode 0600).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let ctx = |what: &str| format!("{what} {}", path.display());
    let tmp = path.with_extension("tmp~");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| NetError::io(ctx("create"), e))?;
    // The umask can only remove bits, but be explicit anyway.
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| NetError::io(ctx("chmod"), e))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(|e| NetError::io(ctx("write"), e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| NetError::io(ctx("rename into"), e))
}

/// Reads a private key file, refusing it when its group or others may read
/// or write it.
pub fn read_private(path: &Path) -> Result<Vec<u8>> {
    let meta =
        fs::metadata(path).map_err(|e| NetError::io(format!("stat {}", path.display()), e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(NetError::InsecureKeyFile {
            path: path.to_owned(),
            mode,
        });
    }
    fs::read(path).map_err(|e| NetError::io(format!("read {}", path.display()), e))
}

/// Reads a public file (a certificate).
pub fn read_public(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| NetError::io(format!("read {}", path.display()), e))
}
