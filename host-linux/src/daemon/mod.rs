//! `heidid`: configuration, the Unix-socket and HTTP listeners, metrics, shutdown.
