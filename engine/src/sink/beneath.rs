//! Files written beneath one directory handle. `spate serve` checks every path a request names
//! under `--data-dir`; between that check and the open, a directory on the way could be swapped
//! for a symbolic link to elsewhere. Once [`confine_writes_beneath`] is called, a path under
//! that directory is opened relative to a handle of it, and no component may be a link or
//! climb out: `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (Linux 5.6+), where the
//! kernel resolves the whole path at once; on older kernels (`ENOSYS`) a walk that opens each
//! directory with `openat(O_DIRECTORY | O_NOFOLLOW)` from the one before, and the file last
//! with `O_NOFOLLOW`. Paths elsewhere (the operator's own files) open as before.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

static BENEATH: OnceLock<(PathBuf, OwnedFd)> = OnceLock::new();

/// Whether files spate writes (a file sink, DLQ files) are opened without following a symbolic
/// link in their last component. `spate serve` sets it for the whole process: a path it checked
/// under `--data-dir` cannot be turned into a link between the check and the open.
static NO_FOLLOW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Refuses symbolic links as the last component of every file opened for writing from now on.
pub fn refuse_symlinks() {
    NO_FOLLOW.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Open options for a file spate writes: `O_NOFOLLOW` once [`refuse_symlinks`] was called, and
/// always `O_CLOEXEC` (std's default).
fn write_options() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    if NO_FOLLOW.load(std::sync::atomic::Ordering::Relaxed) {
        o.custom_flags(libc::O_NOFOLLOW);
    }
    o
}

/// How a file is opened for writing: created if missing, then truncated or appended to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    Truncate,
    Append,
}

/// From now on, files under `dir` (an absolute, canonical path) open beneath a handle of it.
/// Once per process; a second call keeps the first directory.
pub fn confine_writes_beneath(dir: &Path) -> io::Result<()> {
    let c = cstr(dir.as_os_str())?;
    // SAFETY: `c` is a NUL-terminated path that lives across the call; O_PATH asks for a handle
    // only, and the returned descriptor is checked before use.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = BENEATH.set((dir.to_path_buf(), fd));
    refuse_symlinks();
    Ok(())
}

/// Opens `path` for writing: beneath the confining directory when it lies under it, else with
/// the process's usual options (`O_NOFOLLOW` under serve).
pub(crate) fn open_write(path: &Path, mode: Mode) -> io::Result<File> {
    if let Some((dir, fd)) = BENEATH.get() {
        if let Ok(rel) = path.strip_prefix(dir) {
            return open_beneath(fd, rel, mode);
        }
    }
    let mut o = write_options();
    match mode {
        Mode::Truncate => o.write(true).create(true).truncate(true),
        Mode::Append => o.append(true).create(true),
    };
    o.open(path)
}

fn flags(mode: Mode) -> libc::c_int {
    let base = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    base | match mode {
        Mode::Truncate => libc::O_TRUNC,
        Mode::Append => libc::O_APPEND,
    }
}

fn open_beneath(dir: &OwnedFd, rel: &Path, mode: Mode) -> io::Result<File> {
    match openat2(dir, rel, mode) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => walk(dir, rel, mode),
        r => r,
    }
}

fn openat2(dir: &OwnedFd, rel: &Path, mode: Mode) -> io::Result<File> {
    let c = cstr(rel.as_os_str())?;
    // SAFETY: open_how is plain integers; all-zero is a valid value of it.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags(mode) as u64;
    how.mode = 0o666;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `dir` is an open descriptor, `c` a NUL-terminated path and `how` an open_how whose
    // size is passed; all three outlive the call. The result is checked before use.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            std::ptr::from_ref(&how),
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative result of openat2 is a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(r as RawFd) })
}

/// The same resolution, one component at a time (kernels without `openat2`).
fn walk(dir: &OwnedFd, rel: &Path, mode: Mode) -> io::Result<File> {
    let names: Vec<&OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("`{}` leaves the directory it must stay beneath", rel.display()),
            )),
        })
        .collect::<io::Result<_>>()?;
    let Some((last, dirs)) = names.split_last() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty path names no file"));
    };
    let mut held: Option<OwnedFd> = None;
    for d in dirs {
        let at = held.as_ref().map_or(dir.as_raw_fd(), AsRawFd::as_raw_fd);
        let c = cstr(d)?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: `at` is an open descriptor (the confining handle or one held here), `c` a
        // NUL-terminated name; the result is checked before use.
        let fd = unsafe { libc::openat(at, c.as_ptr(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor from openat, owned by nothing else.
        held = Some(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let at = held.as_ref().map_or(dir.as_raw_fd(), AsRawFd::as_raw_fd);
    let c = cstr(last)?;
    // SAFETY: as above; O_NOFOLLOW refuses a link as the file itself.
    let fd = unsafe { libc::openat(at, c.as_ptr(), flags(mode), 0o666 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor from openat, owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(dir: &Path) -> OwnedFd {
        let c = cstr(dir.as_os_str()).unwrap();
        // SAFETY: a NUL-terminated path; the result is checked.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
        assert!(fd >= 0);
        // SAFETY: just opened, owned here only.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    /// A directory swapped for a link after the check: both resolutions refuse it, and nothing
    /// is written where the link points.
    #[test]
    fn a_directory_swapped_for_a_link_is_refused() {
        let root = std::env::temp_dir().join(format!("spate-beneath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (data, outside) = (root.join("data"), root.join("outside"));
        std::fs::create_dir_all(data.join("runs")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let fd = handle(&data);
        let rel = Path::new("runs/out.jsonl");
        for open in [openat2, walk] {
            let mut f = open(&fd, rel, Mode::Truncate).unwrap();
            std::io::Write::write_all(&mut f, b"x\n").unwrap();
            open(&fd, rel, Mode::Append).unwrap();
        }
        std::fs::remove_dir_all(data.join("runs")).unwrap();
        std::os::unix::fs::symlink(&outside, data.join("runs")).unwrap();
        for open in [openat2, walk] {
            for mode in [Mode::Truncate, Mode::Append] {
                let e = open(&fd, rel, mode).unwrap_err();
                let code = e.raw_os_error();
                assert!(code == Some(libc::ELOOP) || code == Some(libc::ENOTDIR), "{mode:?}: {e}");
            }
            assert!(open(&fd, Path::new("../outside/x"), Mode::Truncate).is_err());
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "a write escaped");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
