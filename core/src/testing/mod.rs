//! Test support shared by the core's test suites: one node harness ([`harness`]), a
//! cluster of nodes under one clock ([`cluster`]) and one fault-injecting storage
//! ([`faulty_storage`]). Compiled only for tests.

pub(crate) mod cluster;
pub(crate) mod faulty_storage;
pub(crate) mod harness;

pub(crate) use faulty_storage::{Failure, Fault, FaultyStorage, Op};
pub(crate) use harness::{Harness, T0};

/// Declares `$name` as a suite's own wrapper of the shared [`Harness`] (a tuple struct
/// that derefs to it), so a suite can add or override methods while reusing the rest.
macro_rules! wrap_harness {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        struct $name(crate::testing::Harness);

        impl std::ops::Deref for $name {
            type Target = crate::testing::Harness;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }
    };
}
pub(crate) use wrap_harness;
