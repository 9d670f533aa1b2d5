//! The `heidi` command line.
