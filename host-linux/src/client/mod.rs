//! The client library: unix, http and null transports, retries at one layer, `guard`.
