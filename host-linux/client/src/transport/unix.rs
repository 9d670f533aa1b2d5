//! The Unix-socket transport: one connection per call, one framed request, exactly one framed
//! reply, everything bounded by the attempt's deadline.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Instant;

use heidi_core::proto::{FrameDecoder, FrameError, RESPONSE_MAX_BYTES};
use socket2::{Domain, SockAddr, Socket, Type};

use super::{Reply, Request, TransportError, io_failure, remaining};

/// Bytes read from the socket per `read` call.
const READ_CHUNK_BYTES: usize = 8 * 1024;

/// Framed JSON over a Unix stream socket.
#[derive(Debug)]
pub(crate) struct UnixTransport {
    path: PathBuf,
}

impl UnixTransport {
    /// A transport for the socket at `path`.
    pub(crate) fn new(path: PathBuf) -> UnixTransport {
        UnixTransport { path }
    }

    /// Connects, writes the request, reads one reply.
    pub(crate) fn send(
        &self,
        request: &Request,
        deadline: Instant,
    ) -> Result<Reply, TransportError> {
        let mut stream = self.connect(deadline)?;
        write_all(&mut stream, &request.prefix, deadline)?;
        write_all(&mut stream, request.body.as_bytes(), deadline)?;
        read_reply(&mut stream, deadline)
    }

    /// A blocking connect bounded by `SO_SNDTIMEO`, which Linux applies to a Unix-socket
    /// connect waiting for room in a full listen backlog (it then fails with `EAGAIN`).
    fn connect(&self, deadline: Instant) -> Result<UnixStream, TransportError> {
        let addr = SockAddr::unix(&self.path).map_err(TransportError::Connect)?;
        let socket =
            Socket::new(Domain::UNIX, Type::STREAM, None).map_err(TransportError::Connect)?;
        let left = remaining(deadline, "connecting")?;
        socket
            .set_write_timeout(Some(left))
            .map_err(TransportError::Connect)?;
        match socket.connect(&addr) {
            Ok(()) => Ok(UnixStream::from(socket)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(TransportError::Timeout("connecting".into()))
            }
            Err(e) => Err(TransportError::Connect(e)),
        }
    }
}

/// Writes all of `bytes`, each `write` bounded by the time left.
fn write_all(
    stream: &mut UnixStream,
    mut bytes: &[u8],
    deadline: Instant,
) -> Result<(), TransportError> {
    while !bytes.is_empty() {
        let left = remaining(deadline, "writing the request")?;
        stream
            .set_write_timeout(Some(left))
            .map_err(|e| io_failure(e, "writing the request"))?;
        match stream.write(bytes) {
            Ok(0) => return Err(TransportError::Broken("socket accepted no bytes".into())),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failure(e, "writing the request")),
        }
    }
    Ok(())
}

/// Reads exactly one frame. A length prefix above [`RESPONSE_MAX_BYTES`] is refused as soon as
/// its four bytes arrive, without reading the body.
fn read_reply(stream: &mut UnixStream, deadline: Instant) -> Result<Reply, TransportError> {
    let mut decoder = Box::new(FrameDecoder::<RESPONSE_MAX_BYTES>::new());
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    loop {
        let left = remaining(deadline, "waiting for the reply")?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| io_failure(e, "reading the reply"))?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => {
                let why = match decoder.finish() {
                    Ok(()) => "closed before replying".to_owned(),
                    Err(e) => e.to_string(),
                };
                return Err(TransportError::Broken(why));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_failure(e, "waiting for the reply")),
        };
        let mut input = &chunk[..n];
        while !input.is_empty() {
            let step = decoder.feed(input);
            input = &input[step.consumed..];
            match step.frame {
                None => {}
                Some(Ok(body)) => return Reply::parse(body),
                Some(Err(FrameError::TooLarge { len_bytes, .. })) => {
                    return Err(TransportError::ReplyTooLarge(Some(len_bytes.into())));
                }
                Some(Err(e)) => return Err(TransportError::BadReply(e.to_string())),
            }
        }
    }
}
