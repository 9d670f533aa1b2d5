//! Placeholder until the batcher benchmark lands.

fn main() {}
