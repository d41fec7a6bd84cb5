//! Test support shared by the core's test suites: one node harness ([`harness`]).
//! Compiled only for tests.

pub(crate) mod harness;

pub(crate) use harness::{Harness, T0};
