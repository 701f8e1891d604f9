//! `make bench-core`: the cost of producing one signed hash-bin role with
//! the TUF core (build, canonical bytes, sign, on-disk bytes) against the raw
//! signing cost of the crypto library alone, for each online key type.
//! Prints a Markdown table; it asserts nothing (benchmarks never gate CI).
use std::path::PathBuf;
use std::time::Instant;

use rstuf_worker::tuf::hashbins::HashBins;
use rstuf_worker::tuf::metadata::{MetaFile, Snapshot, Targets};
use rstuf_worker::tuf::{Metadata, PemSigner, PrivateKey, Signer, UtcTime, Version};

const ROLES: u64 = 16384;

fn shared_key(file: &str) -> Result<PemSigner, String> {
    let base = std::env::var_os("RSTUF_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let path = base.join("vectors/tuf/keys/generated").join(file);
    let pem = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let private = PrivateKey::from_pem(&pem).map_err(|e| e.to_string())?;
    let key = private.key_dict();
    let keyid = key.keyid().map_err(|e| e.to_string())?;
    PemSigner::new(private, &keyid, &key).map_err(|e| e.to_string())
}

/// µs per role: build an empty bin, sign it, render the file.
fn per_role(signer: &dyn Signer, bins: &HashBins, expires: UtcTime) -> Result<f64, String> {
    let start = Instant::now();
    let mut bytes = 0usize;
    for (_, name) in bins.roles() {
        let mut md = Metadata::new(Targets::new(Version(1), expires));
        md.sign(signer).map_err(|e| format!("{name}: {e}"))?;
        bytes += md.to_file_bytes().map_err(|e| e.to_string())?.len();
    }
    std::hint::black_box(bytes);
    Ok(start.elapsed().as_secs_f64() * 1e6 / ROLES as f64)
}

/// µs per raw signature over the same canonical bytes.
fn raw_sign(signer: &dyn Signer, payload: &[u8]) -> Result<f64, String> {
    let start = Instant::now();
    for _ in 0..ROLES {
        std::hint::black_box(signer.sign(payload).map_err(|e| e.to_string())?);
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / ROLES as f64)
}

/// ms to encode a snapshot listing every bin, canonically and as a file,
/// best of `runs`: every publication on a 16384-bin repository pays both.
fn snapshot_encoding(bins: &HashBins, expires: UtcTime, runs: u32) -> Result<(f64, f64), String> {
    let mut snapshot = Snapshot::new(Version(1), expires);
    for (_, name) in bins.roles() {
        snapshot
            .meta
            .insert(format!("{name}.json"), MetaFile::new(Version(7)));
    }
    let md = Metadata::new(snapshot);
    let best = |f: &dyn Fn() -> Result<usize, String>| -> Result<f64, String> {
        let mut best = f64::MAX;
        for _ in 0..runs {
            let start = Instant::now();
            std::hint::black_box(f()?);
            best = best.min(start.elapsed().as_secs_f64() * 1e3);
        }
        Ok(best)
    };
    let canonical = best(&|| {
        md.signed_bytes()
            .map(|b| b.len())
            .map_err(|e| e.to_string())
    })?;
    let file = best(&|| {
        md.to_file_bytes()
            .map(|b| b.len())
            .map_err(|e| e.to_string())
    })?;
    Ok((canonical, file))
}

fn main() -> Result<(), String> {
    let bins = HashBins::from_count(ROLES).map_err(|e| e.to_string())?;
    let expires = UtcTime::parse("2036-01-01T00:00:00Z").map_err(|e| e.to_string())?;
    let payload = Metadata::new(Targets::new(Version(1), expires))
        .signed_bytes()
        .map_err(|e| e.to_string())?;
    println!("{ROLES} bin roles, one thread, release build\n");
    println!("| key | raw sign µs | per role µs | overhead µs | overhead / sign |");
    println!("|---|---|---|---|---|");
    for (label, file) in [
        ("ed25519", "online-ed25519.pem"),
        ("ecdsa-p256", "ecdsa-p256-a.pem"),
        ("rsa-2048 pss", "rsa-2048-a.pem"),
    ] {
        let signer = shared_key(file)?;
        let raw = raw_sign(&signer, &payload)?;
        let full = per_role(&signer, &bins, expires)?;
        let overhead = full - raw;
        println!(
            "| {label} | {raw:.1} | {full:.1} | {overhead:.1} | {:.0} % |",
            100.0 * overhead / raw
        );
    }
    let (canonical, file) = snapshot_encoding(&bins, expires, 20)?;
    println!(
        "\nsnapshot of {ROLES} bins, best of 20: canonical {canonical:.1} ms, file {file:.1} ms"
    );
    Ok(())
}
