//! Once `refuse_symlinks` is called (as `spate serve` does), a file spate writes is not opened
//! through a symbolic link in its last component: a link swapped in after a path was checked
//! under `--data-dir` fails the open instead of redirecting the write. Its own test binary: the
//! switch is process-wide.

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
