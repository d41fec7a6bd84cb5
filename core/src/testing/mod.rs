//! Test support shared by the core's test suites: one node harness ([`harness`]) and one
//! fault-injecting storage ([`faulty_storage`]). Compiled only for tests.

pub(crate) mod faulty_storage;
pub(crate) mod harness;

pub(crate) use faulty_storage::{Failure, Fault, FaultyStorage, Op};
pub(crate) use harness::{Harness, T0};
