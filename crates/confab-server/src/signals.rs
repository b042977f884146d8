//! SIGINT and SIGTERM: the first stops the server gracefully, a second one exits at once.

/// The shutdown signals, caught from the moment they are installed: one that comes while the
/// server starts is not lost, and a second one is caught as well as the first.
pub struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

/// A signal that came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    Interrupt,
    Terminate,
}

impl Received {
    pub fn name(self) -> &'static str {
        match self {
            Received::Interrupt => "SIGINT",
            Received::Terminate => "SIGTERM",
        }
    }

    /// The exit status of a process this signal ended, as shells report it: 128 + its number.
    pub fn exit_code(self) -> i32 {
        match self {
            Received::Interrupt => 128 + 2,
            Received::Terminate => 128 + 15,
        }
    }
}

impl Signals {
    #[cfg(unix)]
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    #[cfg(not(unix))]
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    /// The next signal.
    #[cfg(unix)]
    pub async fn next(&mut self) -> Received {
        tokio::select! {
            _ = self.int.recv() => Received::Interrupt,
            _ = self.term.recv() => Received::Terminate,
        }
    }

    /// The next signal (Ctrl-C).
    #[cfg(not(unix))]
    pub async fn next(&mut self) -> Received {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Received::Interrupt,
            Err(_) => std::future::pending().await,
        }
    }
}
