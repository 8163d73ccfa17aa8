//! `orgsec-bench dictionary`: trains the zstd dictionary that the store compresses finding
//! documents with (`orchestrator/src/store/findings.zdict`).
//!
//! A finding document is about 2 KB of JSON, too little for a compressor to learn from: zstd on
//! its own spends most of its time building entropy tables for each one and halves it at best.
//! A dictionary trained on documents of the same kind carries those tables and the text every
//! document repeats (ASFF's field names, product and standard ARNs, control titles, remediation
//! links), so each document compresses several times faster and several times smaller.
//!
//! The samples are the Security Hub findings of the emulator's demo organization and of a
//! generated organization with a different seed from the benchmarks' (seed 1, where `ingest`
//! and `sync` use 7), so that the ingest benchmark does not measure documents the dictionary was
//! trained on. The dictionary is checked in; frames carry its id, so a future dictionary gets a
//! new file and the store keeps reading frames made with this one.

use std::path::Path;

use anyhow::Context;
use tokio::runtime::Runtime;

use crate::ingest::read_base;

/// Where the samples come from.
const SCENARIOS: [&str; 2] = ["demo", "generate:accounts=20,resources=100,seed=1"];
/// The dictionary's size: big enough for the text documents share, small enough to stay in a
/// core's cache while compressing.
const SIZE: usize = 64 * 1024;

pub(crate) fn run(rt: &Runtime, out: &Path) -> anyhow::Result<()> {
    let mut samples: Vec<String> = Vec::new();
    for scenario in SCENARIOS {
        let base = rt.block_on(read_base(scenario))?;
        samples.extend(base.into_iter().flat_map(|a| a.docs));
    }
    let bytes: usize = samples.iter().map(String::len).sum();
    let dictionary = zstd::dict::from_samples(&samples, SIZE).context("training the dictionary")?;
    let with: usize = {
        let mut c = zstd::bulk::Compressor::with_dictionary(1, &dictionary)?;
        samples.iter().map(|s| c.compress(s.as_bytes()).map(|z| z.len())).sum::<std::io::Result<usize>>()?
    };
    let without: usize = {
        let mut c = zstd::bulk::Compressor::new(1)?;
        samples.iter().map(|s| c.compress(s.as_bytes()).map(|z| z.len())).sum::<std::io::Result<usize>>()?
    };
    std::fs::write(out, &dictionary).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{} samples, {} bytes; dictionary of {} bytes written to {}",
        samples.len(),
        bytes,
        dictionary.len(),
        out.display()
    );
    println!(
        "compressed at level 1: {:.2}x without the dictionary, {:.2}x with it (on the training samples)",
        bytes as f64 / without as f64,
        bytes as f64 / with as f64
    );
    Ok(())
}
