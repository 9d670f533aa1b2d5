//! Placeholder until the limiter benchmark lands.

fn main() {}
