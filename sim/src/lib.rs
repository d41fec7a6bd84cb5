//! Keel sim.
