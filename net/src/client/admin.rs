//! Admin calls of [`Client`](super::Client): configs, partitions, groups, records.
