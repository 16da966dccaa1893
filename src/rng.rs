//! Seeded randomness on torch's generator.
//!
//! torch's default generator is one per process. Every seeded draw in minima runs
//! inside [`seeded`], which holds a lock while it seeds and draws, so threads that
//! share the process (parallel tests, an embedding program) never interleave their
//! draws and the same seed always gives the same numbers.

use std::sync::Mutex;

static GENERATOR: Mutex<()> = Mutex::new(());

pub fn seeded<T>(seed: i64, draw: impl FnOnce() -> T) -> T {
    let _guard = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(seed);
    draw()
}

/// splitmix64 of (seed, stream): independent, reproducible seeds for numbered
/// streams such as epochs, so epoch e's draws depend on nothing but (seed, e).
pub fn derive(seed: i64, stream: i64) -> i64 {
    let mut z = (seed as u64) ^ (stream as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}
