//! The lifecycle of kernel objects that outlive processes: created (exclusively, or opened after
//! checking), used, and removed only on purpose.
//!
//! A handle to an object closes or detaches when dropped; that never removes the object. Removal
//! is explicit ([`Removable::remove`]) or delegated to an [`Owner`] guard, which removes the name
//! when it is dropped: the usual arrangement for the process that created a queue or segment,
//! and for tests, which must leave nothing behind even when they fail.
//!
//! Mappings follow the same rule in the backends: `map` borrows a handle and returns a mapping
//! whose slices borrow the mapping, and `unmap` consumes it, so no access survives an unmap.

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::Result;

/// A kernel object with a name that can be removed (`unlink`, `mq_unlink`, `IPC_RMID`).
pub trait Removable {
    /// Removes the object's name. Handles already open keep working until closed (for System V
    /// segments: until the last detach); nobody can open it again by name.
    fn remove(&self) -> Result<()>;

    /// The object's name as the user knows it, for messages (e.g. `fifo:/tmp/app.fifo`).
    fn object_name(&self) -> String;
}

/// Whether an object opened rather than created may be used under the strict rule: it must
/// belong to `our_uid` and grant nothing beyond the `requested` permission bits. Anything else
/// may have been put there first by someone else to be adopted by us (name squatting), so it
/// fails closed. Returns why not, with both values, for an
/// [`Error::Incompatible`](crate::Error::Incompatible). [`Adoption`](crate::Adoption) is the
/// same rule with the opt-ins of a transport string.
///
/// ```
/// assert!(ipc_core::check_adoptable(1000, 1000, 0o600, 0o600).is_ok());
/// assert!(ipc_core::check_adoptable(1000, 1000, 0o666, 0o600).unwrap_err().contains("0666"));
/// assert!(ipc_core::check_adoptable(0, 1000, 0o600, 0o600).unwrap_err().contains("uid 0"));
/// ```
pub fn check_adoptable(
    owner_uid: u32,
    our_uid: u32,
    mode: u32,
    requested: u32,
) -> std::result::Result<(), String> {
    // No group is accepted by the strict rule, so the object's group does not matter.
    crate::Adoption::strict(requested).check_as(our_uid, owner_uid, u32::MAX, mode)
}

/// Removes the object it holds when dropped, unless [`Owner::release`]d.
///
/// ```
/// use ipc_core::{Owner, Removable, Result};
/// use std::cell::Cell;
///
/// struct Thing<'a>(&'a Cell<bool>);
/// impl Removable for Thing<'_> {
///     fn remove(&self) -> Result<()> { self.0.set(true); Ok(()) }
///     fn object_name(&self) -> String { "thing".into() }
/// }
///
/// let removed = Cell::new(false);
/// {
///     let _owner = Owner::new(Thing(&removed));
/// }
/// assert!(removed.get());
///
/// let removed = Cell::new(false);
/// let thing = Owner::new(Thing(&removed)).release(); // outlives the owner
/// assert!(!removed.get());
/// # drop(thing);
/// ```
pub struct Owner<T: Removable> {
    inner: Option<T>,
}

impl<T: Removable> Owner<T> {
    /// Takes ownership: `object` will be removed when the owner is dropped.
    pub fn new(object: T) -> Owner<T> {
        Owner {
            inner: Some(object),
        }
    }

    /// Removes the object now, reporting failure (which `Drop` cannot).
    pub fn destroy(mut self) -> Result<()> {
        let object = self
            .inner
            .take()
            .expect("owner holds its object until consumed");
        object.remove()
    }

    /// Gives up ownership: the object stays after the handle is dropped.
    pub fn release(mut self) -> T {
        self.inner
            .take()
            .expect("owner holds its object until consumed")
    }
}

impl<T: Removable> Deref for Owner<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner
            .as_ref()
            .expect("owner holds its object until consumed")
    }
}

impl<T: Removable> DerefMut for Owner<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner
            .as_mut()
            .expect("owner holds its object until consumed")
    }
}

impl<T: Removable> Drop for Owner<T> {
    fn drop(&mut self) {
        if let Some(object) = self.inner.take() {
            // Drop cannot report; `destroy` is there for callers who need to know.
            let _ = object.remove();
        }
    }
}

impl<T: Removable + fmt::Debug> fmt::Debug for Owner<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Owner")
            .field("object", &self.inner)
            .finish()
    }
}
