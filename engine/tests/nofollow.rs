//! Once `refuse_symlinks` is called (as `spate serve` does), a file spate writes is not opened
//! through a symbolic link in its last component: a link swapped in after a path was checked
//! under `--data-dir` fails the open instead of redirecting the write. Its own test binary: the
//! switch is process-wide. Beneath `--data-dir`, a directory on the way swapped for a link is
//! refused too (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`).

use spate_engine::sink::{refuse_symlinks, WriterSink};

#[test]
fn a_link_swapped_in_cannot_redirect_a_write() {
    let dir = std::env::temp_dir().join(format!("spate-nofollow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("elsewhere");
    std::fs::write(&target, "untouched\n").unwrap();
    let link = dir.join("out.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // Before the switch, a link is followed (the operator's own runs may use links).
    assert!(WriterSink::file(&dir.join("plain.jsonl")).is_ok());
    refuse_symlinks();
    let e = WriterSink::file(&link).map(|_| ()).unwrap_err();
    assert!(e.to_string().contains(&link.display().to_string()), "{e}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
    // A regular file is still written.
    assert!(WriterSink::file(&dir.join("plain.jsonl")).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_directory_swapped_for_a_link_cannot_redirect_a_write() {
    let root = std::env::temp_dir().join(format!("spate-beneath-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (data, outside) = (root.join("data"), root.join("outside"));
    std::fs::create_dir_all(data.join("runs")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let data = std::fs::canonicalize(&data).unwrap();
    spate_engine::sink::confine_writes_beneath(&data).unwrap();
    let path = data.join("runs/out.jsonl");
    assert!(WriterSink::file(&path).is_ok(), "a real directory under the data dir");
    // The check passed; now `runs` becomes a link to elsewhere before the open.
    std::fs::remove_dir_all(data.join("runs")).unwrap();
    std::os::unix::fs::symlink(&outside, data.join("runs")).unwrap();
    let e = WriterSink::file(&path).map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("out.jsonl"), "{e}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "the write escaped");
    // Paths elsewhere (the operator's own) are opened as before.
    assert!(WriterSink::file(&outside.join("operator.jsonl")).is_ok());
    std::fs::remove_dir_all(&root).unwrap();
}
