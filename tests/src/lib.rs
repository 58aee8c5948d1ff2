//! Test support shared by the workspace's integration tests: loading the
//! committed transformers parity fixtures and comparing tensors.
