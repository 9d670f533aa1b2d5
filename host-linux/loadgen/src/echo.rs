//! The raw Unix-socket peer: an echo server that writes back whatever it reads, so a client
//! sending a daemon-sized request frame gets the same frame back. Its round trip is the floor
//! the daemon's latency is compared with: one thread, epoll (tokio current_thread, as Redis
//! runs one event loop), no parsing, no locks.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Serves a bound listener on the calling thread (its own current_thread runtime) until
/// accepting fails; returns only with an error. Binding first lets the caller connect as soon
/// as this thread is spawned.
pub fn serve_blocking(listener: std::os::unix::net::UnixListener) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        listener.set_nonblocking(true)?;
        serve(UnixListener::from_std(listener)?).await
    })
}

/// Serves every connection as its own task until accepting fails.
pub async fn serve(listener: UnixListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = echo_connection(stream, usize::MAX).await;
        });
    }
}

/// Echoes one connection until EOF, writing at most `write_max_bytes` per write call (tests
/// use 1 to split every frame; the server uses no limit).
pub async fn echo_connection(mut stream: UnixStream, write_max_bytes: usize) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        for chunk in buf[..n].chunks(write_max_bytes.max(1)) {
            stream.write_all(chunk).await?;
        }
    }
}
