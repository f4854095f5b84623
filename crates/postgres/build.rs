//! Fingerprints the migrations `src/migrate.rs` embeds, so a test harness can tell whether a
//! database migrated earlier holds exactly this build's schema (`migrations_fingerprint`).

use std::fs;
use std::path::{Path, PathBuf};

const MIGRATIONS: &str = "../../migrations/postgres";

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// FNV-1a, 64 bits: stable across toolchains and machines, unlike std's hasher.
fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for byte in bytes {
        *hash ^= u64::from(*byte);
        *hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

fn main() {
    let root = Path::new(MIGRATIONS);
    println!("cargo:rerun-if-changed={MIGRATIONS}");
    let mut paths = Vec::new();
    files(root, &mut paths);
    paths.sort();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for path in &paths {
        let relative = path.strip_prefix(root).unwrap_or(path);
        // Names and contents, each terminated, so moving text between files changes the hash.
        fnv1a(&mut hash, relative.to_string_lossy().as_bytes());
        fnv1a(&mut hash, &[0]);
        fnv1a(&mut hash, &fs::read(path).unwrap_or_default());
        fnv1a(&mut hash, &[0]);
    }
    println!("cargo:rustc-env=LMS_POSTGRES_MIGRATIONS_FINGERPRINT={hash:016x}");
}
