//! Placeholder until the breaker benchmark lands.

fn main() {}
