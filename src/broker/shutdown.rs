//! The stop flag shared by signal handlers and pool threads.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

use super::Error;

/// How often sleeping threads look at the flag: a signal handler may only
/// set an atomic, so nobody can be woken directly.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// Cloneable handle to one stop flag.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks the pool to stop taking messages; running handlers finish.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// First SIGTERM/SIGINT requests a graceful stop; a second one ends the
    /// process at once with exit code 1 (unacknowledged messages are then
    /// redelivered by RabbitMQ).
    pub fn install_signal_handlers(&self) -> Result<(), Error> {
        for signal in [SIGTERM, SIGINT] {
            // Order matters: the exit check must run before the flag is set,
            // so only a signal arriving when the flag is already up exits.
            flag::register_conditional_shutdown(signal, 1, Arc::clone(&self.0))
                .map_err(Error::Signals)?;
            flag::register(signal, Arc::clone(&self.0)).map_err(Error::Signals)?;
        }
        Ok(())
    }

    /// Sleeps for `wait` unless a stop is requested first; true if it was.
    pub(crate) fn sleep(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while !self.is_requested() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(POLL));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let a = Shutdown::new();
        let b = a.clone();
        assert!(!b.is_requested());
        a.request();
        assert!(b.is_requested());
    }

    #[test]
    fn sleep_returns_early_on_request() {
        let s = Shutdown::new();
        let t = Instant::now();
        assert!(!s.sleep(Duration::from_millis(150)));
        assert!(t.elapsed() >= Duration::from_millis(150));

        let waker = s.clone();
        let handle = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.request();
        });
        let t = Instant::now();
        assert!(s.sleep(Duration::from_secs(30)));
        assert!(t.elapsed() < Duration::from_secs(2));
        handle.join().unwrap();
    }
}
