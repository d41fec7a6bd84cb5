//! keel-sim: Keel's deterministic simulator. So far: [`disk`], the simulated disk that
//! injects every storage fault deterministically from a seed.

pub mod disk;
