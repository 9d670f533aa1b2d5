//! The core components behind the daemon's methods, and the policy document.
