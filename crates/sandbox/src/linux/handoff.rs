//! The egress proxy's listener, handed from inside the sandbox to palisade.
//!
//! # Why a handed-over listener
//! The server lives in a network namespace with nothing but loopback, and palisade's egress proxy must be
//! reachable from there while it connects out from palisade's own namespace. A socket belongs to the
//! namespace it was created in, so the sandbox helper (right after it made the sandbox's network
//! namespace, before the server exists) creates a TCP listener on the sandbox's `127.0.0.1:<port>` and
//! sends it to palisade with `SCM_RIGHTS`. palisade then `accept`s the server's connections directly: no process inside the
//! sandbox relays a byte (DESIGN §4: every extra hop costs tens of microseconds), and the sandbox holds no
//! socket into the host's network.
//!
//! # The channel
//! A path unix socket in a fresh directory (mode 0700, random name) that only palisade's user can enter;
//! the helper connects to it before it forks PID 1 (so before PID 1's `pivot_root`), while the host's tree
//! is still visible, and the directory is removed as soon as the listener arrives. palisade accepts exactly one connection, requires the peer to
//! run as its own user, and checks that what arrived is a listening IPv4 stream socket.

use std::io::{self, IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The proxy's port on the sandbox's own loopback. Any port works (the namespace is the sandbox's
/// alone); a fixed one keeps the proxy variables identical from run to run. 3128 is the proxy
/// convention (Squid's default), so it is what a reader of `HTTP_PROXY` expects.
pub const PROXY_PORT: u16 = 3128;

/// How long palisade waits for the sandbox to hand over the listener.
const HANDOFF_TIMEOUT: Duration = Duration::from_secs(10);

/// palisade's end: the rendezvous directory and socket. Removed on drop.
#[derive(Debug)]
pub struct Handoff {
    dir: PathBuf,
    socket: PathBuf,
    listener: UnixListener,
}

impl Handoff {
    /// Creates the rendezvous under `$XDG_RUNTIME_DIR` when it is set and absolute, else the system
    /// temporary directory.
    pub fn new() -> io::Result<Handoff> {
        Handoff::new_in(&super::scratch::base())
    }

    /// Creates the rendezvous in a new private directory under `base` ([`super::scratch::private_dir`]).
    pub fn new_in(base: &Path) -> io::Result<Handoff> {
        let dir = super::scratch::private_dir(base, "palisade-egress")?;
        let socket = dir.join("s");
        let listener = UnixListener::bind(&socket).inspect_err(|_| {
            let _ = std::fs::remove_dir(&dir);
        })?;
        listener.set_nonblocking(true)?;
        Ok(Handoff {
            dir,
            socket,
            listener,
        })
    }

    /// The path the sandbox helper connects to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Waits for the sandbox's listener. Gives up when `helper` exits first (its setup failed: its
    /// stderr says why) or after a timeout.
    pub fn receive(self, helper: &mut Child) -> io::Result<TcpListener> {
        let deadline = Instant::now() + HANDOFF_TIMEOUT;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if let Some(status) = helper.try_wait()? {
                return Err(io::Error::other(format!(
                    "the sandbox exited ({status}) before handing over the egress proxy's listener"
                )));
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the sandbox did not hand over the egress proxy's listener within 10 s",
                ));
            }
            let mut fds = [rustix::event::PollFd::new(
                &self.listener,
                rustix::event::PollFlags::IN,
            )];
            let slice = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 20_000_000,
            };
            let _ = rustix::event::poll(&mut fds, Some(&slice));
        };
        let peer = rustix::net::sockopt::socket_peercred(&stream)?;
        if peer.uid != rustix::process::getuid() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "refused an egress handoff from uid {} (expected palisade's own user)",
                    peer.uid.as_raw()
                ),
            ));
        }
        let fd = receive_fd(&stream)?;
        check_listener(&fd)?;
        Ok(TcpListener::from(fd))
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Receives one descriptor (close-on-exec) sent with [`send_listener`].
fn receive_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(HANDOFF_TIMEOUT))?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let got = rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            for f in fds {
                // A second descriptor is dropped (closed) here: only one was expected.
                fd.get_or_insert(f);
            }
        }
    }
    match fd {
        Some(fd) if got.bytes == 1 => Ok(fd),
        _ => {
            // Whatever the peer says instead (an error line) is worth showing.
            let mut rest = String::new();
            let _ = stream.take(512).read_to_string(&mut rest);
            Err(io::Error::other(format!(
                "the sandbox sent no listener{}",
                if rest.is_empty() {
                    String::new()
                } else {
                    format!(": {}", rest.trim())
                }
            )))
        }
    }
}

/// What arrived must be a listening IPv4 stream socket (the proxy serves nothing else).
fn check_listener(fd: &OwnedFd) -> io::Result<()> {
    let domain = rustix::net::sockopt::socket_domain(fd)?;
    let listening = rustix::net::sockopt::socket_acceptconn(fd)?;
    let stream = rustix::net::sockopt::socket_type(fd)? == rustix::net::SocketType::STREAM;
    if domain != AddressFamily::INET || !listening || !stream {
        return Err(io::Error::other(
            "the sandbox handed over something other than a listening TCP socket",
        ));
    }
    Ok(())
}

/// The sandbox's end, first half: connects to the rendezvous at `path`. The helper does this before it
/// forks PID 1, while the host's tree is certainly its root (PID 1's `pivot_root` moves the root of every
/// process in the mount namespace, the helper's included). palisade accepts the connection and waits on
/// it for [`send_listener`].
pub fn connect(path: &Path) -> io::Result<UnixStream> {
    UnixStream::connect(path)
        .map_err(|e| io::Error::new(e.kind(), format!("connect to {}: {e}", path.display())))
}

/// The sandbox's end, second half: listens on `127.0.0.1:port` in the current (the sandbox's) network
/// namespace and sends the listener to palisade over `stream` (from [`connect`]). The listener is closed
/// here afterwards: palisade holds the only copy.
pub fn send_listener(port: u16, stream: &UnixStream) -> io::Result<()> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
        .map_err(|e| io::Error::new(e.kind(), format!("listen on 127.0.0.1:{port}: {e}")))?;
    send_fd(stream, listener.as_fd(), b"L")
}

/// Sends `fd` with `payload` (not empty) in one message over `stream` (`SCM_RIGHTS`).
pub(super) fn send_fd(
    stream: &UnixStream,
    fd: std::os::fd::BorrowedFd<'_>,
    payload: &[u8],
) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    let n = rustix::net::sendmsg(
        stream,
        &[IoSlice::new(payload)],
        &mut control,
        SendFlags::empty(),
    )?;
    if n != payload.len() {
        return Err(io::Error::other("short write"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpStream;
    use std::process::Command;

    /// A child that stays alive while the test hands over (stands in for the helper).
    fn sleeper() -> Child {
        Command::new("sleep").arg("30").spawn().unwrap()
    }

    #[test]
    fn a_listener_sent_over_the_rendezvous_accepts_in_the_receiver() {
        let h = Handoff::new_in(&std::env::temp_dir()).unwrap();
        let dir = h.dir.clone();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&dir).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);
        let path = h.socket().to_path_buf();
        // Port 0: any free port on the host's loopback (a test cannot count on 3128 being free).
        let sender = std::thread::spawn(move || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            let s = UnixStream::connect(&path).unwrap();
            send_fd(&s, l.as_fd(), b"L").unwrap();
            port
        });
        let mut helper = sleeper();
        let listener = h.receive(&mut helper).unwrap();
        let port = sender.join().unwrap();
        assert_eq!(listener.local_addr().unwrap().port(), port);
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"hi").unwrap();
        let (mut a, _) = listener.accept().unwrap();
        let mut got = [0u8; 2];
        a.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        // The rendezvous is gone once the listener arrived.
        assert!(!dir.exists());
        let _ = helper.kill();
        let _ = helper.wait();
    }

    #[test]
    fn anything_but_a_listening_tcp_socket_is_refused() {
        let h = Handoff::new_in(&std::env::temp_dir()).unwrap();
        let path = h.socket().to_path_buf();
        let sender = std::thread::spawn(move || {
            // A connected unix socket is not a listener.
            let (a, _b) = UnixStream::pair().unwrap();
            let s = UnixStream::connect(&path).unwrap();
            send_fd(&s, a.as_fd(), b"L").unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let mut helper = sleeper();
        let err = h.receive(&mut helper).unwrap_err();
        assert!(err.to_string().contains("listening TCP socket"), "{err}");
        sender.join().unwrap();
        let _ = helper.kill();
        let _ = helper.wait();
    }

    #[test]
    fn a_sandbox_that_dies_before_the_handoff_is_reported_not_waited_for() {
        let h = Handoff::new_in(&std::env::temp_dir()).unwrap();
        let mut helper = Command::new("sh").args(["-c", "exit 125"]).spawn().unwrap();
        let err = h.receive(&mut helper).unwrap_err();
        assert!(err.to_string().contains("exited"), "{err}");
        assert!(err.to_string().contains("125"), "{err}");
    }
}
