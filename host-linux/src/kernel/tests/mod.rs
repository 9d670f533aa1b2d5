//! Unit tests of the kernel, one file per component.
