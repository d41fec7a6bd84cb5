//! Sets `KEEL_GIT_COMMIT` to the short hash of the commit being built, for `keel_build_info`
//! (metrics.rs), or "unknown" where there is no git or no repository (a source tarball, a
//! crate from a registry). Cargo reruns it when `HEAD` or the branch it names moves, so a
//! commit rebuilds this crate and nothing else does.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    if let Some(git_dir) = manifest.ancestors().find_map(git_dir) {
        watch_head(&git_dir);
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(&manifest)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=KEEL_GIT_COMMIT={commit}");
}

/// `dir/.git` if it is a repository: the directory itself, or the one a worktree's or
/// submodule's `.git` file points to (`gitdir: <path>`).
fn git_dir(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let link = std::fs::read_to_string(&dot_git).ok()?;
    let target = PathBuf::from(link.strip_prefix("gitdir:")?.trim());
    Some(if target.is_absolute() {
        target
    } else {
        dir.join(target)
    })
}

/// Asks Cargo to rerun when `HEAD` changes (a checkout) or the branch it names moves (a
/// commit): the loose ref, else `packed-refs` and the folder where the next commit writes
/// it. Only paths that exist: Cargo reruns a build script on every build while a path it
/// watches is missing.
fn watch_head(git_dir: &Path) {
    let head = git_dir.join("HEAD");
    println!("cargo:rerun-if-changed={}", head.display());
    let Ok(text) = std::fs::read_to_string(&head) else {
        return;
    };
    let Some(name) = text.strip_prefix("ref:").map(str::trim) else {
        return; // A detached HEAD holds the hash itself.
    };
    // A worktree keeps HEAD to itself and its refs in the common directory.
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|_| git_dir.to_path_buf());
    let loose = common.join(name);
    if loose.is_file() {
        println!("cargo:rerun-if-changed={}", loose.display());
        return;
    }
    // Packed (or not created yet): the next commit writes the loose file into its folder.
    let packed = common.join("packed-refs");
    let folder = loose.parent().map(Path::to_path_buf).unwrap_or_default();
    for path in [packed, folder] {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
