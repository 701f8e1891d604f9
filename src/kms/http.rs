//! What every KMS client shares: a bound on calls in flight, retries with
//! backoff for throttling and server faults, and the plain HTTPS exchange.
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use attohttpc::body::Body;
use attohttpc::{RequestBuilder, StatusCode};

/// At most this many calls of one signer in flight: signing 16384 bins from
/// every pool thread must not trip the account's request quota.
pub const MAX_IN_FLIGHT: usize = 8;
/// Throttled or failing calls are retried this often, backing off from
/// [`FIRST_BACKOFF`], doubling each time.
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How one attempt at a call ended.
pub enum Failure {
    /// Throttled or a server/transport fault: worth another attempt.
    Transient(String),
    Permanent(String),
}

impl Failure {
    /// A refusal with HTTP `status`: throttling (429, or `throttled` as the
    /// service names it) and server faults are worth retrying.
    pub fn of_status(status: StatusCode, throttled: bool, why: String) -> Failure {
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() || throttled {
            Failure::Transient(why)
        } else {
            Failure::Permanent(why)
        }
    }
}

/// Calls `attempt` until it succeeds or fails for good, sleeping between
/// attempts; `what` names the call in logs and errors.
pub fn with_retries<T>(
    what: &str,
    mut attempt: impl FnMut() -> Result<T, Failure>,
) -> Result<T, String> {
    let mut backoff = FIRST_BACKOFF;
    for attempt_number in 1..=ATTEMPTS {
        match attempt() {
            Ok(answer) => return Ok(answer),
            Err(Failure::Transient(why)) if attempt_number < ATTEMPTS => {
                log::warn!("KMS {what} failed ({why}); retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff *= 2;
            }
            Err(Failure::Transient(why)) => {
                return Err(format!("{what} failed {ATTEMPTS} times, last: {why}"))
            }
            Err(Failure::Permanent(why)) => return Err(format!("{what}: {why}")),
        }
    }
    unreachable!("the last attempt returns")
}

/// Calls in flight to one service, at most [`MAX_IN_FLIGHT`].
pub struct Gate {
    in_flight: Mutex<usize>,
    slot_freed: Condvar,
}

impl Gate {
    pub fn new() -> Gate {
        Gate {
            in_flight: Mutex::new(0),
            slot_freed: Condvar::new(),
        }
    }

    /// Sends `request` once a slot is free; the answer's status and text.
    pub fn exchange<B: Body>(
        &self,
        url: &str,
        request: RequestBuilder<B>,
    ) -> Result<(StatusCode, String), Failure> {
        let _slot = self.take_slot();
        let response = request
            .timeout(REQUEST_TIMEOUT)
            .send()
            .map_err(|e| Failure::Transient(format!("cannot reach {url}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .map_err(|e| Failure::Transient(format!("reading the answer: {e}")))?;
        Ok((status, text))
    }

    fn take_slot(&self) -> Slot<'_> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        while *in_flight >= MAX_IN_FLIGHT {
            in_flight = self
                .slot_freed
                .wait(in_flight)
                .unwrap_or_else(|p| p.into_inner());
        }
        *in_flight += 1;
        Slot(self)
    }
}

/// One call in flight; frees its place when dropped.
struct Slot<'a>(&'a Gate);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.0.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        *in_flight -= 1;
        self.0.slot_freed.notify_one();
    }
}
