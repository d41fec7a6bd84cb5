//! Consumer-group calls of [`Client`](super::Client): coordinator lookup, membership and
//! committed offsets.
