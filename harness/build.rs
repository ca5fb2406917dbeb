//! Record what built this binary, for the `meta.json` of every run: the git
//! revision of the source (with `-dirty` for uncommitted changes), the
//! compiler's version and the digest of Cargo.lock.

use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn main() {
    let revision = output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string());
    let dirty = output("git", &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let revision = if dirty { format!("{revision}-dirty") } else { revision };
    println!("cargo:rustc-env=HEAPLAB_GIT_REVISION={revision}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=HEAPLAB_RUSTC={version}");
    // The digest of the Cargo.lock the binary was built with: every crate
    // version behind its figures.
    use sha2::Digest as _;
    let lock = std::fs::read("../Cargo.lock").unwrap_or_default();
    let digest: String = sha2::Sha256::digest(&lock).iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=HEAPLAB_CARGO_LOCK_SHA256={digest}");
    println!("cargo:rustc-env=HEAPLAB_DIRTY={dirty}");
    println!("cargo:rerun-if-changed=../Cargo.lock");
    // Rebuild when the checked-out commit changes, not on every edit.
    for path in ["../.git/HEAD", "../.git/index"] {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
