//! Keel net.
