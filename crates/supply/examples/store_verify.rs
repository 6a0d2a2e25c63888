//! Times the start-up check of a store entry: the full tree digest against the verified-stamps cache.
//!
//! ```sh
//! cargo run --release -p palisade-supply --example store_verify -- STORE_DIR KEY [RUNS]
//! ```
//! `STORE_DIR` is `$XDG_DATA_HOME/palisade/store`, `KEY` an entry's sha256 (its tree digest is read from
//! the entry's manifest). Prints the median and range of each, in milliseconds.

use std::path::PathBuf;
use std::time::Instant;

use palisade_supply::store::{Store, tree_digest};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(key)) = (args.next(), args.next()) else {
        eprintln!("usage: store_verify STORE_DIR KEY [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(20);
    let store = Store::new(PathBuf::from(&root));
    let tree = store.manifest(&key).expect("manifest").tree;
    let dir = store.entry_dir(&key).expect("key");
    let time = |f: &dyn Fn()| {
        let mut ms: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        (ms[ms.len() / 2], ms[0], ms[ms.len() - 1])
    };
    let full = time(&|| assert_eq!(tree_digest(&dir).unwrap(), tree));
    // The first verify writes the cache (if it is missing); the timed ones use it.
    store.verify(&key, &tree).expect("verifies");
    let cached = time(&|| {
        store.verify(&key, &tree).expect("verifies");
    });
    println!(
        "full tree digest : median {:.1} ms (range {:.1}–{:.1}), {runs} runs",
        full.0, full.1, full.2
    );
    println!(
        "verify, cached   : median {:.1} ms (range {:.1}–{:.1}), {runs} runs",
        cached.0, cached.1, cached.2
    );
}
