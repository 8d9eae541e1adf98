//! Results folders appear whole or not at all: built in a temporary sibling, then moved into place
//! by one rename, or by one atomic exchange (Linux `renameat2(RENAME_EXCHANGE)`) over an old folder
//! with `--force`, after which the old one is removed. A crash leaves the old folder or the new one,
//! plus at most a temporary sibling that the next write removes.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Marker in the names of temporary siblings: `.<name>.d11sim-tmp-<pid>`.
const TMP_MARKER: &str = ".d11sim-tmp-";
/// Test hook: milliseconds to sleep after the folder is complete and before it is moved into
/// place, so that a test can kill the process inside the write phase every time.
pub const PAUSE_ENV: &str = "D11SIM_TEST_PAUSE_BEFORE_RENAME_MS";

fn write_err(path: &Path, source: std::io::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses an existing target unless `force` (checked before a run starts, and again at the end).
pub fn check_target(target: &Path, force: bool) -> Result<()> {
    if target.exists() && !force {
        return Err(Error::OutputExists(target.to_path_buf()));
    }
    Ok(())
}

fn name_of(target: &Path) -> Result<String> {
    target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: not a folder name for results",
                target.display()
            ))
        })
}

fn parent_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes temporary siblings left by earlier writes whose process is gone.
fn remove_leftovers(parent: &Path, name: &str) {
    let prefix = format!(".{name}{TMP_MARKER}");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let alive = Path::new("/proc").join(pid).exists() && pid != std::process::id().to_string();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Usage(format!("{}: path contains a NUL byte", path.display())))
}

/// `renameat2(from, to, flags)`: one atomic step.
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    let (a, b) = (
        c_path(from).map_err(std::io::Error::other)?,
        c_path(to).map_err(std::io::Error::other)?,
    );
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Builds a results folder with `fill` in a temporary sibling of `target`, then moves it into place.
pub fn write_folder(
    target: &Path,
    force: bool,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let name = name_of(target)?;
    let parent = parent_of(target);
    std::fs::create_dir_all(&parent).map_err(|e| write_err(&parent, e))?;
    remove_leftovers(&parent, &name);
    check_target(target, force)?;
    let tmp = parent.join(format!(".{name}{TMP_MARKER}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| write_err(&tmp, e))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Some(ms) = std::env::var(PAUSE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    move_into_place(&tmp, target, force)
}

fn move_into_place(tmp: &Path, target: &Path, force: bool) -> Result<()> {
    match renameat2(tmp, target, libc::RENAME_NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_dir_all(tmp);
            return Err(write_err(target, e));
        }
        Err(_) => {}
    }
    if !force {
        let _ = std::fs::remove_dir_all(tmp);
        return Err(Error::OutputExists(target.to_path_buf()));
    }
    renameat2(tmp, target, libc::RENAME_EXCHANGE).map_err(|e| write_err(target, e))?;
    // `tmp` now holds the old folder.
    std::fs::remove_dir_all(tmp).map_err(|e| write_err(tmp, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_with_force_and_leaves_no_sibling() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let put = |text: &'static str| {
            move |p: &Path| std::fs::write(p.join("a.txt"), text).map_err(|e| write_err(p, e))
        };
        write_folder(&target, false, put("one")).unwrap();
        assert!(matches!(
            write_folder(&target, false, put("two")),
            Err(Error::OutputExists(_))
        ));
        assert_eq!(
            std::fs::read_to_string(target.join("a.txt")).unwrap(),
            "one"
        );
        write_folder(&target, true, put("three")).unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("a.txt")).unwrap(),
            "three"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out")]);
    }

    #[test]
    fn a_failed_fill_leaves_the_old_folder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        write_folder(&target, false, |p| {
            std::fs::write(p.join("a.txt"), "old").map_err(|e| write_err(p, e))
        })
        .unwrap();
        let failed = write_folder(&target, true, |_| Err(Error::Run("boom".into())));
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read_to_string(target.join("a.txt")).unwrap(),
            "old"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
