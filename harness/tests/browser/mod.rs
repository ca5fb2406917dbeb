//! The real headless Chromium the browser tests open pages in (Debian's
//! `chromium`, which `.ci/run` installs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The browser: `HEAPLAB_CHROMIUM`, or the first of the usual names on PATH.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("HEAPLAB_CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(output) = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output()
            && output.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        }
    }
    panic!("the browser tests need Chromium: `apt-get install chromium` (as .ci/run does), or HEAPLAB_CHROMIUM=PATH");
}

/// Chromium, headless, on `page` (with `#fragment` if not empty) and
/// `args`, its scripts given three seconds of virtual time; it must succeed.
pub fn headless(page: &Path, fragment: &str, args: &[&str]) -> Output {
    let url = if fragment.is_empty() {
        format!("file://{}", page.display())
    } else {
        format!("file://{}#{fragment}", page.display())
    };
    let output = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000"])
        .args(args)
        .arg(&url)
        .output()
        .expect("running chromium");
    assert!(output.status.success(), "chromium failed on {url}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// The DOM of `page` opened at `fragment`, after its scripts ran.
#[allow(dead_code)] // not every test file reads the DOM
pub fn dump_dom(page: &Path, fragment: &str, args: &[&str]) -> String {
    let mut all = vec!["--dump-dom"];
    all.extend_from_slice(args);
    String::from_utf8(headless(page, fragment, &all).stdout).unwrap()
}
