//! Links the `lms-app` binary with the functions a running server executes packed together, in
//! the order `symbol-order.txt` lists them (the most executed first).
//!
//! Once the server has run, most of the binary's code is resident: the kernel maps a file's
//! pages 64 KiB at a time around each page touched, and the functions that run are spread over
//! the whole binary. Packed together they leave 3-4.5 MiB of code unmapped: 12.1-13.7 MiB after
//! the benchmark's loads instead of 16.6-16.7 (crates/bench/README.md, "Functions laid out in
//! the order they run"). The list is written by `scripts/callgrind-compare.sh --symbol-order
//! crates/app/symbol-order.txt`, run for the release build and the Docker image's. A function
//! missing from it (new, or renamed since) is laid out as without the list, so a stale list
//! costs memory, never correctness.
//!
//! `--symbol-ordering-file` is an option of LLD, which rustc links x86_64 Linux binaries with
//! since 1.90; the list is used there only. `LMS_SYMBOL_ORDER=off` leaves it out, for a build
//! configured with another linker.

use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=LMS_SYMBOL_ORDER");
    match env::var("LMS_SYMBOL_ORDER") {
        Ok(value) if value == "off" => return,
        Ok(value) => {
            println!("cargo::error=LMS_SYMBOL_ORDER={value}: the only value it takes is off");
            return;
        }
        Err(_) => {}
    }
    let target = |key: &str| env::var(key).unwrap_or_default();
    let x86_64_linux = target("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && target("CARGO_CFG_TARGET_OS") == "linux"
        && target("CARGO_CFG_TARGET_ENV") == "gnu";
    if !x86_64_linux || !links_with_lld() {
        return;
    }
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("symbol-order.txt");
    // Absent where only the manifests are copied (the Docker image's dependency layer).
    if !list.is_file() {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bin=lms-app=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    // The list names one build's functions; another build's that it misses are expected.
    println!("cargo:rustc-link-arg-bin=lms-app=-Wl,--no-warn-symbol-ordering");
}

/// Whether the compiler is 1.90 or later, which links x86_64 Linux binaries with its own LLD.
fn links_with_lld() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let Ok(output) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = String::from_utf8_lossy(&output.stdout);
    let minor = version
        .split_whitespace()
        .nth(1)
        .and_then(|number| number.split('.').nth(1))
        .and_then(|minor| minor.parse::<u32>().ok());
    minor.is_some_and(|minor| minor >= 90)
}
