//! Which existing objects an opener accepts: the rule every backend applies to an object it
//! opened rather than created.
//!
//! An object found under a predictable name may have been put there by someone else, to be
//! adopted by us (name squatting), so by default only objects of our own effective uid that
//! grant nothing beyond the requested `mode` are accepted. Talking to another user's program is
//! an explicit opt-in in the transport string:
//!
//! - `owner=any`, `owner=UID` or `owner=NAME`: also accept objects of that user (or of anyone).
//!   Our own objects stay accepted.
//! - `group=GID` or `group=NAME`: also accept objects whose group is that one.
//! - `mode=MODE`: for an existing object, "at most this wide": one granting any permission
//!   beyond `MODE` is refused. (At creation, `mode` is exactly the mode the object gets.) An
//!   object with mode `0644` is accepted by `mode=0644` or `mode=0666`, not by the default
//!   `0600`.
//!
//! A refusal names the option that would accept the object.

use std::fmt;

use crate::spec::Options;
use crate::{Error, Result};

/// Whose objects an opener accepts besides its own (the `owner=` option).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OwnerChoice {
    /// `owner=any`: objects of every user.
    Any,
    /// `owner=UID` or `owner=NAME`: objects of that user.
    User(Principal),
}

/// A user or group as written in a transport string: a number, or a name resolved when the
/// object is opened (with `getpwnam` / `getgrnam`), so that the string stays what was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A numeric uid or gid.
    Id(u32),
    /// A user or group name.
    Name(String),
}

impl fmt::Display for OwnerChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnerChoice::Any => f.write_str("any"),
            OwnerChoice::User(p) => p.fmt(f),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Id(id) => write!(f, "{id}"),
            Principal::Name(name) => f.write_str(name),
        }
    }
}

impl Principal {
    /// Parses `UID`/`GID` (decimal) or a name of the portable set (`[A-Za-z0-9._-]`, not
    /// starting with `-`), which cannot be confused with the syntax of a transport string.
    pub fn parse(text: &str) -> std::result::Result<Principal, String> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(Principal::Id)
                .map_err(|_| format!("`{text}` is beyond the largest id"));
        }
        let portable = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if text.is_empty() || text.starts_with('-') || !text.bytes().all(portable) {
            return Err(format!(
                "`{text}` is neither a number nor a user or group name"
            ));
        }
        Ok(Principal::Name(text.to_owned()))
    }
}

/// The owner rule once names are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AcceptOwner {
    /// Only our effective uid (the default).
    #[default]
    Us,
    /// Us and this uid.
    Uid(u32),
    /// Anyone.
    Any,
}

/// The rule for adopting an existing object: whose it may be and how wide its mode may be.
///
/// ```
/// use ipc_core::{AcceptOwner, Adoption};
///
/// let strict = Adoption::strict(0o600);
/// assert!(strict.check_as(1000, 1000, 100, 0o600).is_ok());
/// let err = strict.check_as(1000, 0, 0, 0o600).unwrap_err();
/// assert!(err.contains("add owner=0 or owner=any"), "{err}");
/// let err = strict.check_as(1000, 1000, 100, 0o644).unwrap_err();
/// assert!(err.contains("add mode=0644"), "{err}");
///
/// let root = Adoption { owner: AcceptOwner::Uid(0), ..Adoption::strict(0o666) };
/// assert!(root.check_as(1000, 0, 0, 0o666).is_ok());
/// assert!(root.check_as(1000, 1000, 0, 0o644).is_ok()); // ours still
/// assert!(root.check_as(1000, 2, 0, 0o600).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Adoption {
    /// Whose objects are accepted besides our own.
    pub owner: AcceptOwner,
    /// Objects of this group are accepted whoever owns them.
    pub group: Option<u32>,
    /// Widest acceptable permission bits.
    pub mode: u32,
}

impl Default for Adoption {
    /// Our own objects with mode within `0600`.
    fn default() -> Adoption {
        Adoption::strict(0o600)
    }
}

impl Adoption {
    /// Only our own objects, granting nothing beyond `mode`.
    pub fn strict(mode: u32) -> Adoption {
        Adoption {
            owner: AcceptOwner::Us,
            group: None,
            mode,
        }
    }

    /// Any object the operating system lets us open: for tools that look at objects (read,
    /// write or inspect a segment) rather than talk through them as an endpoint.
    pub fn anything() -> Adoption {
        Adoption {
            owner: AcceptOwner::Any,
            group: None,
            mode: 0o7777,
        }
    }

    /// The rule a transport string asks for: `owner=`, `group=` and `mode=` (else
    /// `default_mode`). Names are resolved here, so an unknown one is
    /// [`Error::InvalidSpec`] naming it.
    pub fn from_options(options: &Options, default_mode: u32) -> Result<Adoption> {
        let owner = match &options.owner {
            None => AcceptOwner::Us,
            Some(OwnerChoice::Any) => AcceptOwner::Any,
            Some(OwnerChoice::User(Principal::Id(uid))) => AcceptOwner::Uid(*uid),
            Some(OwnerChoice::User(Principal::Name(name))) => AcceptOwner::Uid(
                nix::unistd::User::from_name(name)
                    .map_err(|e| Error::invalid_spec(format!("owner={name}"), e.desc()))?
                    .ok_or_else(|| Error::invalid_spec(format!("owner={name}"), "no such user"))?
                    .uid
                    .as_raw(),
            ),
        };
        let group = match &options.group {
            None => None,
            Some(Principal::Id(gid)) => Some(*gid),
            Some(Principal::Name(name)) => Some(
                nix::unistd::Group::from_name(name)
                    .map_err(|e| Error::invalid_spec(format!("group={name}"), e.desc()))?
                    .ok_or_else(|| Error::invalid_spec(format!("group={name}"), "no such group"))?
                    .gid
                    .as_raw(),
            ),
        };
        Ok(Adoption {
            owner,
            group,
            mode: options.mode.unwrap_or(default_mode),
        })
    }

    /// Whether an object owned by `uid` and `gid` with permissions `mode` may be adopted by our
    /// effective uid. Returns why not, naming the option that would accept it, for an
    /// [`Error::Incompatible`].
    pub fn check(&self, uid: u32, gid: u32, mode: u32) -> std::result::Result<(), String> {
        self.check_as(nix::unistd::geteuid().as_raw(), uid, gid, mode)
    }

    /// Checks an object found in the file system from its `stat`: it must be `kind`, and
    /// [`Adoption::check`] must accept its owner, group and mode. Anything else is
    /// [`Error::Incompatible`] saying what is there instead.
    ///
    /// ```
    /// use ipc_core::{Adoption, FileKind};
    ///
    /// let me = nix::unistd::geteuid().as_raw();
    /// let strict = Adoption::strict(0o600);
    /// assert!(strict.check_file("/run/app", FileKind::Fifo, 0o010_600, me, me).is_ok());
    /// let file = strict.check_file("/run/app", FileKind::Fifo, 0o100_600, me, me);
    /// assert!(file.unwrap_err().to_string().contains("it is a regular file, not a FIFO"));
    /// let wide = strict.check_file("/run/app", FileKind::Fifo, 0o010_666, me, me);
    /// assert!(wide.unwrap_err().to_string().contains("0666"));
    /// ```
    pub fn check_file(
        &self,
        object: &str,
        kind: FileKind,
        st_mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<()> {
        let incompatible = |reason: String| Error::Incompatible {
            object: object.to_owned(),
            reason,
        };
        let found = FileKind::of_mode(st_mode);
        if found != kind {
            return Err(incompatible(format!(
                "it is {}, not {}",
                found.describe(),
                kind.describe()
            )));
        }
        self.check(uid, gid, st_mode).map_err(incompatible)
    }

    /// [`Adoption::check`] for the effective uid `me`.
    pub fn check_as(
        &self,
        me: u32,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> std::result::Result<(), String> {
        self.check_owner(me, uid, gid)?;
        let mode = mode & 0o7777;
        if mode & !self.mode != 0 {
            return Err(format!(
                "its mode {mode:04o} grants more than the requested {:04o}: add mode={:04o} \
                 to accept it",
                self.mode,
                (self.mode | mode) & 0o777,
            ));
        }
        Ok(())
    }

    /// Whether an object of `uid` (a System V creator, say) is one this rule accepts, whatever
    /// its mode; `gid` is that user's group if known.
    pub fn check_owner(&self, me: u32, uid: u32, gid: u32) -> std::result::Result<(), String> {
        let accepted = uid == me
            || match self.owner {
                AcceptOwner::Us => false,
                AcceptOwner::Uid(u) => uid == u,
                AcceptOwner::Any => true,
            }
            || self.group == Some(gid);
        if accepted {
            return Ok(());
        }
        let group = match self.group {
            Some(g) => format!(" nor in group {g} (it is in group {gid})"),
            None => String::new(),
        };
        Err(format!(
            "it is owned by uid {uid}, not by us (uid {me}){group}: add owner={uid} or \
             owner=any to accept it"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransportSpec;

    #[test]
    fn owner_and_group_round_trip_for_every_named_transport() {
        for s in [
            "fifo:/x?mode=0644&owner=any",
            "posix-mq:/q?owner=0&group=wheel",
            "posix-shm:/r?owner=nobody",
            "sysv-mq:key=0x1234?mode=0666&owner=0",
            "sysv-shm:key=0x1234?group=65534",
        ] {
            let spec: TransportSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        let spec: TransportSpec = "fifo:/x?owner=nobody&group=7".parse().unwrap();
        assert_eq!(
            spec.options.owner,
            Some(OwnerChoice::User(Principal::Name("nobody".into())))
        );
        assert_eq!(spec.options.group, Some(Principal::Id(7)));
    }

    #[test]
    fn malformed_owner_and_group_are_refused_by_name() {
        for (s, needle) in [
            ("pipe:?owner=any", "does not apply to pipe"),
            ("fifo:/x?owner=", "no value"),
            ("fifo:/x?owner=a b", "neither a number"),
            ("fifo:/x?owner=-x", "neither a number"),
            ("fifo:/x?group=99999999999", "largest id"),
            ("fifo:/x?owner=0&owner=1", "twice"),
        ] {
            let err = s.parse::<TransportSpec>().unwrap_err().to_string();
            assert!(err.contains(needle), "{s}: {err}");
        }
    }

    #[test]
    fn mode_is_at_most_and_group_widens_the_owner() {
        let a = Adoption::strict(0o666);
        assert!(a.check_as(5, 5, 5, 0o644).is_ok());
        assert!(a.check_as(5, 5, 5, 0o666).is_ok());
        assert!(a.check_as(5, 5, 5, 0o4600).unwrap_err().contains("4600"));
        let g = Adoption {
            group: Some(9),
            ..Adoption::strict(0o660)
        };
        assert!(g.check_as(5, 6, 9, 0o660).is_ok());
        let err = g.check_as(5, 6, 8, 0o660).unwrap_err();
        assert!(
            err.contains("nor in group 9") && err.contains("owner=6"),
            "{err}"
        );
        assert!(Adoption::anything().check_as(5, 6, 7, 0o6777).is_ok());
    }

    #[test]
    fn names_resolve_when_opening() {
        let spec: TransportSpec = "fifo:/x?owner=root&group=root&mode=0644".parse().unwrap();
        let a = Adoption::from_options(&spec.options, 0o600).unwrap();
        assert_eq!(
            (a.owner, a.group, a.mode),
            (AcceptOwner::Uid(0), Some(0), 0o644)
        );
        let spec: TransportSpec = "fifo:/x?owner=no-such-user-ipc".parse().unwrap();
        let err = Adoption::from_options(&spec.options, 0o600).unwrap_err();
        assert!(err.to_string().contains("owner=no-such-user-ipc"), "{err}");
    }
}

/// Permissions of a segment created without an explicit mode, and the widest mode
/// [`Expect::default`] accepts: the owner's alone.
pub const DEFAULT_SEGMENT_MODE: u32 = 0o600;

/// What opening an existing shared-memory segment requires of it, whatever its kind (POSIX,
/// System V): the [`Adoption`] rule for its owner and mode, and a least size.
///
/// ```
/// use ipc_core::{Adoption, Expect};
///
/// let expect = Expect::size(4096).mode(0o660);
/// assert_eq!(expect.adoption(), Adoption::strict(0o660));
/// assert!(expect.check_size("posix-shm:/x", 4096).is_ok());
/// assert!(expect.check_size("posix-shm:/x", 100).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// Smallest acceptable size in bytes; the handle maps the segment's actual size.
    pub min_size: usize,
    /// Widest acceptable mode: a segment granting any permission beyond it is refused.
    pub mode: u32,
    /// Whose segments are accepted besides our own (`owner=` of a transport string).
    pub owner: AcceptOwner,
    /// A segment of this group is accepted whoever owns it (`group=`).
    pub group: Option<u32>,
}

impl Expect {
    /// At least `min_size` bytes, mode no wider than [`DEFAULT_SEGMENT_MODE`].
    pub fn size(min_size: usize) -> Expect {
        Expect {
            min_size,
            mode: DEFAULT_SEGMENT_MODE,
            owner: AcceptOwner::Us,
            group: None,
        }
    }

    /// The same, with the owner, group and widest mode of `adoption`.
    pub fn adopt(self, adoption: &Adoption) -> Expect {
        Expect {
            mode: adoption.mode,
            owner: adoption.owner,
            group: adoption.group,
            ..self
        }
    }

    /// The rule for the segment's owner and mode.
    pub fn adoption(&self) -> Adoption {
        Adoption {
            owner: self.owner,
            group: self.group,
            mode: self.mode,
        }
    }

    /// The same, accepting permissions up to `mode` (e.g. `0o660` for a group of peers).
    pub fn mode(self, mode: u32) -> Expect {
        Expect { mode, ..self }
    }

    /// A segment of `actual` bytes must have at least `min_size` (and never none): else
    /// [`Error::Incompatible`](crate::Error::Incompatible) for `object`, with both sizes.
    pub fn check_size(&self, object: &str, actual: u64) -> crate::Result<()> {
        let required = (self.min_size as u64).max(1);
        if actual < required {
            return Err(crate::Error::Incompatible {
                object: object.to_owned(),
                reason: format!(
                    "its size of {actual} bytes is smaller than the required {required} bytes"
                ),
            });
        }
        Ok(())
    }
}

impl Default for Expect {
    /// Any non-empty segment of ours with mode no wider than [`DEFAULT_SEGMENT_MODE`].
    fn default() -> Expect {
        Expect::size(1)
    }
}

/// What a path holds, from the `S_IFMT` bits of its `st_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file (POSIX shared memory and semaphores under `/dev/shm`).
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link (as `lstat` sees it).
    Symlink,
    /// A named pipe.
    Fifo,
    /// A unix-domain socket.
    Socket,
    /// A character or block device.
    Device,
    /// Anything else.
    Unknown,
}

impl FileKind {
    /// The kind that `st_mode` (from `stat`/`lstat`) records.
    pub fn of_mode(st_mode: u32) -> FileKind {
        match st_mode & 0o170_000 {
            0o100_000 => FileKind::Regular,
            0o040_000 => FileKind::Directory,
            0o120_000 => FileKind::Symlink,
            0o010_000 => FileKind::Fifo,
            0o140_000 => FileKind::Socket,
            0o020_000 | 0o060_000 => FileKind::Device,
            _ => FileKind::Unknown,
        }
    }

    /// The kind in words, with its article: "a FIFO".
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Regular => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Symlink => "a symbolic link",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::Device => "a device",
            FileKind::Unknown => "of an unknown type",
        }
    }
}
