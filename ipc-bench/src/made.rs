//! The named objects one link made (queues, segments), removed when the link is done.

use std::any::Any;
use std::process::Command;

use ipc::{Receiver, Sender};

use crate::interrupt::{self, Named};
use crate::transport::{Link, Peer};
use crate::watch::{self, Stop};

/// The objects of one link, removed when dropped: with the link, after its peer was waited
/// for, or with a `connect` that failed half way. Also tells the link's watcher to stop, first.
#[derive(Default)]
pub struct Made {
    /// Removed here ([`Named::remove`]).
    named: Vec<Named>,
    /// Objects whose owners remove them; here only to be untracked.
    owned: Vec<Named>,
    owners: Vec<Box<dyn Any>>,
    /// For the link's watcher ([`crate::watch::start`]).
    pub stop: Stop,
}

impl Made {
    /// Takes `named` in charge. Only once we created it: an object we failed to create (it
    /// existed) is not ours to remove.
    pub fn created(&mut self, named: Named) {
        interrupt::track(named.clone());
        self.named.push(named);
    }

    /// Keeps `owner`, which removes the object `named` when dropped, until the link is done.
    pub fn owned(&mut self, named: Named, owner: impl Any) {
        interrupt::track(named.clone());
        self.owned.push(named);
        self.owners.push(Box::new(owner));
    }
}

impl Made {
    /// Starts the peer (`cmd`) and a watcher that acts for it once it has exited
    /// ([`watch::start`]), and ties these objects to the link, whose stream ends with an empty
    /// message: the end of every `connect` whose objects do not tell that the peer left.
    pub fn link(
        self,
        to_peer: Box<dyn Sender>,
        from_peer: Box<dyn Receiver>,
        cmd: Command,
        what: &str,
        act: impl FnMut() -> bool + Send + 'static,
    ) -> ipc::Result<Link> {
        let peer = Peer::spawn(cmd)?;
        watch::start(&peer, what, &self.stop, act)?;
        Ok(Link::new(to_peer, from_peer, peer)
            .ended_by_empty_message()
            .keeping(self))
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        self.stop.now();
        self.owners.clear();
        for named in self.named.drain(..) {
            // Already gone if its receiving end removed it: that is fine.
            named.remove();
            interrupt::untrack(&named);
        }
        for named in self.owned.drain(..) {
            interrupt::untrack(&named);
        }
    }
}
