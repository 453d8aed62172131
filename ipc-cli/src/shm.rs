//! `ipc shm read SPEC` and `ipc shm write SPEC`: raw bytes of a shared-memory segment, made by
//! any program (no ring header is read or written).
//!
//! SPEC is `sysv-shm:key=0x…`, `sysv-shm:ftok=PATH:PROJ_ID`, `sysv-shm:id=N` (the id `ipcs -m`
//! and `ipcmk -M` print), `posix-shm:/name` or just `/name`, or `file-shm:/path` (a regular
//! file mapped shared), without options. Segments are found by key, id, name or path without
//! owner or mode checks: the kernel's permission checks apply when they are opened or
//! attached, and this is a tool for other programs' segments.

use std::io::{self, Read, Write};

use ipc::posix::PosixName;
use ipc::posix::shm::{Expect, SharedMemory};
use ipc::sysv::Key;
use ipc::sysv::shm::{Access, SysvSegment};
use ipc::{Address, Segment, Transport, TransportSpec};

use crate::failure::{Context, Failure};

/// Read or write the raw bytes of a shared-memory segment (System V or POSIX).
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Write the segment's bytes (all, or --len from --offset) to standard output.
    Read {
        /// `sysv-shm:key=0x…`, `sysv-shm:ftok=PATH:ID`, `sysv-shm:id=N`, `posix-shm:/name` or
        /// `/name`.
        spec: String,
        /// Where to start, in bytes.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// How many bytes [default: up to the end of the segment].
        #[arg(long)]
        len: Option<usize>,
    },
    /// Copy standard input into the segment at --offset; nothing is written if it does not
    /// fit.
    Write {
        /// `sysv-shm:key=0x…`, `sysv-shm:ftok=PATH:ID`, `sysv-shm:id=N`, `posix-shm:/name` or
        /// `/name`.
        spec: String,
        /// Where to start, in bytes.
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
}

/// A segment as the command line names it.
enum Target {
    SysvKey(Key),
    SysvId(i32),
    Posix(PosixName),
    File(String),
}

fn parse_target(text: &str) -> Result<Target, Failure> {
    // `/NAME` alone is a POSIX segment, as `ipc clean` and `ipc inspect` take it: it is how
    // `ipc ls` prints one, and what a C program passes to `shm_open`.
    if text.starts_with('/') {
        return Ok(Target::Posix(PosixName::new(text).map_err(Failure::from)?));
    }
    if let Some(id) = text.strip_prefix("sysv-shm:id=") {
        return id
            .parse::<i32>()
            .ok()
            .filter(|id| *id >= 0)
            .map(Target::SysvId)
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "invalid segment `{text}`: id=`{id}` must be a segment id (a number from \
                     `ipcs -m`)"
                ))
            });
    }
    let spec: TransportSpec = text.parse().map_err(Failure::from)?;
    if spec.options != ipc::spec::Options::default() {
        return Err(Failure::Usage(format!(
            "invalid segment `{text}`: options (after `?`) do not apply to raw segment access"
        )));
    }
    match (spec.transport, spec.address) {
        (Transport::SysvShm, Address::Private) => Err(Failure::Usage(format!(
            "invalid segment `{text}`: a private segment has no key; name it by id \
             (sysv-shm:id=N)"
        ))),
        (Transport::SysvShm, address) => Ok(Target::SysvKey(
            Key::from_address(&address).map_err(Failure::from)?,
        )),
        (Transport::PosixShm, Address::Name(name)) => {
            Ok(Target::Posix(PosixName::new(&name).map_err(Failure::from)?))
        }
        (Transport::FileShm, Address::Path(path)) => Ok(Target::File(path)),
        (other, _) => Err(Failure::Usage(format!(
            "invalid segment `{text}`: {other} is not shared memory (use sysv-shm:key=…, \
             sysv-shm:ftok=…, sysv-shm:id=N, posix-shm:/name or file-shm:/path)"
        ))),
    }
}

/// Opens and maps (attaches) the segment.
fn open(text: &str, access: Access) -> Result<Box<dyn Segment>, Failure> {
    let what = || format!("opening {text}");
    Ok(match parse_target(text)? {
        Target::SysvKey(key) => Box::new(
            SysvSegment::lookup(&key)
                .and_then(|seg| seg.attach(access))
                .context(what)?,
        ),
        Target::SysvId(id) => Box::new(
            SysvSegment::open_id(id)
                .and_then(|seg| seg.attach(access))
                .context(what)?,
        ),
        Target::Posix(name) => Box::new(
            // Raw bytes of any segment the OS lets us open: this is a tool, not an endpoint,
            // so objects of other users and of any mode are not refused.
            SharedMemory::open(&name, &Expect::size(1).adopt(&ipc::Adoption::anything()))
                .and_then(|shm| shm.map())
                .context(what)?,
        ),
        // A regular file is mapped read-write whatever `access`: reading it through a
        // read-only mapping would need a read-only Mapping type for one tool.
        Target::File(path) => Box::new(crate::objects::map_file(&path).context(what)?),
    })
}

pub fn run(args: Args) -> Result<(), Failure> {
    match args.command {
        Command::Read { spec, offset, len } => read(&spec, offset, len),
        Command::Write { spec, offset } => write(&spec, offset),
    }
}

fn read(spec: &str, offset: usize, len: Option<usize>) -> Result<(), Failure> {
    let seg = open(spec, Access::ReadOnly)?;
    let size = seg.len();
    let len = match len {
        Some(len) => len,
        None => size.checked_sub(offset).ok_or_else(|| {
            Failure::Runtime(format!(
                "reading {spec}: offset {offset} is beyond the segment's {size} bytes"
            ))
        })?,
    };
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(Failure::Runtime(format!(
            "reading {spec}: {len} bytes at offset {offset} go beyond the segment's {size} bytes"
        )));
    }
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; len.min(64 * 1024)];
    let mut done = 0;
    while done < len {
        let n = buf.len().min(len - done);
        seg.read_at(offset + done, &mut buf[..n])
            .context(|| format!("reading {spec}"))?;
        out.write_all(&buf[..n]).map_err(Failure::stdout)?;
        done += n;
    }
    out.flush().map_err(Failure::stdout)
}

fn write(spec: &str, offset: usize) -> Result<(), Failure> {
    let seg = open(spec, Access::ReadWrite)?;
    let size = seg.len();
    let mut data = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut data)
        .map_err(|e| Failure::Runtime(format!("reading standard input: {e}")))?;
    if offset.checked_add(data.len()).is_none_or(|end| end > size) {
        return Err(Failure::Runtime(format!(
            "writing {spec}: {} bytes at offset {offset} do not fit in the segment's {size} \
             bytes; nothing was written",
            data.len()
        )));
    }
    seg.write_at(offset, &data)
        .context(|| format!("writing {spec}"))
}
