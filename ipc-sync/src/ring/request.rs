//! What a transport string asks of a ring, whatever segment holds it: the part of the
//! `posix-shm:` and `sysv-shm:` transports that does not depend on the kind of segment.

use std::time::Duration;

use ipc_core::{Create, Error, Options, Producers, Result, Wait, WaitStrategy};

use super::core::HEADER;
use super::{EndpointOptions, Geometry, RingConfig, RingState};

/// Ring size when the string names none.
pub const DEFAULT_CAPACITY: u64 = 64 * 1024;

/// Largest `capacity` accepted: a mapping is at most `isize::MAX` bytes, and the segment also
/// holds the layout header and control block.
pub const MAX_CAPACITY: u64 = (isize::MAX as u64) / 2;

/// How many times `create=if_missing` retries when the object appears or disappears between
/// its attempt to create and its attempt to open.
const CREATE_ATTEMPTS: usize = 8;

/// The ring options of a transport string: `capacity`, `message_size`, `producers`, `wait`.
/// Options left out accept what an existing ring has.
#[derive(Clone, Debug)]
pub struct RingRequest {
    object: String,
    /// Bytes of ring asked for (rounded as [`RingConfig::new`] rounds).
    pub capacity: Option<u64>,
    /// Largest message asked for.
    pub message_size: Option<usize>,
    /// One producer or many.
    pub producers: Option<Producers>,
    /// How this endpoint waits.
    pub wait: WaitStrategy,
}

/// The smallest capacity (as [`RingConfig::new`] rounds it) whose ring takes `message_size`
/// (the inverse of [`Geometry::max_message_for`]), at most [`MAX_CAPACITY`].
fn capacity_for(message_size: usize) -> u64 {
    let needed = (message_size as u64)
        .saturating_add(HEADER)
        .saturating_mul(2);
    RingConfig::new(needed.min(MAX_CAPACITY)).capacity
}

/// The largest message any ring takes: that of the largest capacity.
fn largest_message() -> usize {
    Geometry::max_message_for(RingConfig::new(MAX_CAPACITY).capacity)
}

impl RingRequest {
    /// Reads the ring options of `options`; `object` names the segment in errors
    /// (`posix-shm:/name`).
    pub fn from_options(options: &Options, object: String) -> Result<RingRequest> {
        let capacity = match options.capacity {
            // No machine maps this much, and no existing ring can have it: the string is wrong,
            // not the machine.
            Some(c) if c > MAX_CAPACITY => {
                return Err(Error::invalid_spec(
                    format!("capacity={c}"),
                    format!(
                        "a ring holds at most {MAX_CAPACITY} bytes (a mapping is at most \
                         isize::MAX bytes, header included); {object} cannot have {c}"
                    ),
                ));
            }
            Some(c) => Some(RingConfig::new(c).capacity),
            None => None,
        };
        let request = RingRequest {
            object,
            capacity,
            message_size: options
                .message_size
                .map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
            producers: options.producers,
            wait: options.wait.unwrap_or_default(),
        };
        let object = &request.object;
        if let Some(m) = request.message_size.filter(|m| *m > largest_message()) {
            return Err(Error::invalid_spec(
                format!("message_size={m}"),
                format!(
                    "no ring takes messages above {} bytes (half of the largest ring, {} \
                     bytes, less its {HEADER}-byte record header); {object} cannot either",
                    largest_message(),
                    RingConfig::new(MAX_CAPACITY).capacity
                ),
            ));
        }
        // With an explicit capacity the bound holds whether we create or open (an existing
        // ring must have that capacity), so a message_size above it can never work: an invalid
        // spec. Without a capacity, only if we create (see `config`).
        if let (Some(capacity), Some(message_size)) = (request.capacity, request.message_size) {
            if message_size > Geometry::max_message_for(capacity) {
                return Err(Error::invalid_spec(
                    format!("message_size={message_size}"),
                    format!(
                        "a ring of capacity {capacity} bytes takes messages of at most {} \
                         bytes (half the ring, less its {HEADER}-byte record header); {object} needs \
                         capacity={} or more for it",
                        Geometry::max_message_for(capacity),
                        capacity_for(message_size),
                    ),
                ));
            }
        }
        Ok(request)
    }

    /// The segment, as errors name it.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The ring to create.
    ///
    /// Errors: a `message_size` above what the default capacity takes (the only case
    /// [`RingRequest::from_options`] lets through) is [`Error::LimitExceeded`], not an invalid
    /// spec: the same string may open an existing, larger ring. The error says what capacity
    /// to ask for.
    pub fn config(&self) -> Result<RingConfig> {
        let mut config = RingConfig::new(self.capacity.unwrap_or(DEFAULT_CAPACITY))
            .producers(self.producers.unwrap_or_default());
        if let Some(message_size) = self.message_size {
            let max = Geometry::max_message_for(config.capacity);
            if message_size > max {
                return Err(Error::LimitExceeded {
                    what: format!(
                        "message_size of {} ({message_size} bytes asked; a new ring of the \
                         default capacity, {} bytes, takes messages of at most {max} bytes: \
                         set capacity={} or more)",
                        self.object,
                        config.capacity,
                        capacity_for(message_size)
                    ),
                    limit: max as u64,
                });
            }
            config = config.max_message_size(message_size);
        }
        Ok(config)
    }

    /// Options for attaching an endpoint to a ring already known to be initialised.
    pub fn endpoint_options(&self) -> EndpointOptions {
        EndpointOptions {
            wait: self.wait,
            init_timeout: Duration::ZERO,
        }
    }

    /// The options the string names must be those of the existing ring: else
    /// [`Error::Incompatible`] saying both.
    pub fn check_matches(&self, state: &RingState) -> Result<()> {
        let geo = state.geometry;
        let mut asked = Vec::new();
        if let Some(c) = self.capacity.filter(|c| *c != geo.capacity) {
            asked.push(format!("capacity {c}"));
        }
        if let Some(m) = self.message_size.filter(|m| *m != geo.max_message) {
            asked.push(format!("message_size {m}"));
        }
        if let Some(p) = self.producers.filter(|p| *p != state.producers_mode) {
            asked.push(format!("producers {p}"));
        }
        if asked.is_empty() {
            return Ok(());
        }
        Err(Error::Incompatible {
            object: self.object.clone(),
            reason: format!(
                "it holds a ring of capacity {}, message_size {}, producers {}, but the \
                 transport string asks for {} (leave an option out to accept the existing \
                 ring's value)",
                geo.capacity,
                geo.max_message,
                state.producers_mode,
                asked.join(", ")
            ),
        })
    }

    /// Creates or opens as `create` says: `create_new` makes the segment exclusively and
    /// initialises the ring, `open_existing(wait)` opens and checks one (waiting up to `wait`
    /// for its name). `create=never` waits up to `name_wait`; `if_missing` retries the race
    /// of two processes creating and removing at once.
    pub fn create_or_open<T>(
        &self,
        create: Create,
        name_wait: Wait,
        mut create_new: impl FnMut(&RingConfig) -> Result<T>,
        mut open_existing: impl FnMut(Wait) -> Result<T>,
    ) -> Result<T> {
        match create {
            Create::Always => create_new(&self.config()?),
            Create::Never => open_existing(name_wait),
            Create::IfMissing => {
                let config = match self.config() {
                    Ok(config) => config,
                    // Only the default capacity is too small for `message_size`: an existing
                    // ring may still be fine, and if there is none, that is the error.
                    Err(e) => {
                        return match open_existing(Wait::Never) {
                            Err(Error::NotFound { .. }) => Err(e),
                            other => other,
                        };
                    }
                };
                let mut last = None;
                for _ in 0..CREATE_ATTEMPTS {
                    match create_new(&config) {
                        Err(Error::AlreadyExists { .. }) => {}
                        other => return other,
                    }
                    match open_existing(Wait::Never) {
                        // Removed between the two attempts: create again.
                        Err(e @ Error::NotFound { .. }) => last = Some(e),
                        other => return other,
                    }
                }
                Err(last.expect("the loop ran at least once"))
            }
        }
    }
}
