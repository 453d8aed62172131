//! `ipc ls [--json]`: every IPC object on the machine, in one table. See [`crate::objects`]
//! for the names it prints and how objects of this framework are recognised.

use std::io::{self, Write};

use crate::failure::{Failure, note, say};
use crate::objects::{self, Object, key_text, user_name};
use crate::text::{escape, json_line};

/// List every System V and POSIX IPC object on the machine, marking those made by ipc.
///
/// NAME is what `ipc clean` and `ipc inspect` take. OURS is `yes` for shared memory holding an
/// ipc-sync layout header (never judged by name); STATE then shows a ring's endpoints and the
/// bytes in flight. ATT: attachments (System V) or other processes mapping or holding the
/// object open (POSIX, from /proc; processes we may not read are not counted).
#[derive(clap::Args)]
pub struct Args {
    /// One JSON object per line instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let scan = objects::scan();
    for n in &scan.notes {
        note(&format!("ipc: note: {n}"));
    }
    let mut out = io::stdout().lock();
    if args.json {
        for o in &scan.objects {
            writeln!(out, "{}", json_line(&Record::of(o))).map_err(Failure::stdout)?;
        }
        Ok(())
    } else {
        print_table(&mut out, &scan.objects)
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn size(o: &Object) -> String {
    use objects::Kind;
    match o.kind {
        Kind::SysvShm | Kind::PosixShm | Kind::PosixSem => opt(o.bytes),
        Kind::SysvMq | Kind::PosixMq => format!("{} msg/{} B", opt(o.count), opt(o.bytes)),
        Kind::SysvSem => format!("{} sem", opt(o.count)),
    }
}

fn creator(o: &Object) -> String {
    match o.creator {
        Some(c) => c.describe(),
        None => "-".to_owned(),
    }
}

fn state(o: &Object) -> String {
    let mut s = o
        .ours
        .as_ref()
        .map(|ours| ours.summary())
        .unwrap_or_default();
    if o.removed {
        if !s.is_empty() {
            s.push_str(", ");
        }
        s.push_str("removed, alive until detached");
    }
    if s.is_empty() { "-".to_owned() } else { s }
}

fn print_table(out: &mut impl Write, list: &[Object]) -> Result<(), Failure> {
    let header = [
        "KIND", "NAME", "KEY", "SIZE", "OWNER", "MODE", "CREATOR", "ATT", "OURS", "STATE",
    ];
    let rows: Vec<[String; 10]> = list
        .iter()
        .map(|o| {
            [
                o.kind.to_string(),
                // Names come from /dev/shm and /dev/mqueue, where anyone may make one.
                escape(&o.name).into_owned(),
                o.key.map_or_else(|| "-".to_owned(), key_text),
                size(o),
                o.uid
                    .map_or_else(|| "-".to_owned(), |u| escape(&user_name(u)).into_owned()),
                o.mode
                    .map_or_else(|| "-".to_owned(), |m| format!("{m:04o}")),
                creator(o),
                opt(o.attached),
                if o.ours.is_some() { "yes" } else { "no" }.to_owned(),
                state(o),
            ]
        })
        .collect();
    // In characters, as `format!` pads: a name may be UTF-8 beyond ASCII.
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        say(out, text.trim_end())
    };
    line(&header)?;
    for row in &rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    Ok(())
}

/// One line of `ipc ls --json`. `kind` is the object's family (`posix-shm`, `sysv-mq`, ...):
/// it was there before every `--json` record got a `kind`, and every line of `ls` is an object,
/// so the family is what tells one record from another.
#[derive(serde::Serialize)]
struct Record {
    kind: &'static str,
    name: String,
    key: Option<String>,
    id: Option<i64>,
    bytes: Option<u64>,
    count: Option<u64>,
    uid: Option<u32>,
    owner: Option<String>,
    mode: Option<String>,
    creator_pid: Option<u32>,
    /// `null` when the creator is in another PID namespace: its pid means nothing here.
    creator_alive: Option<bool>,
    creator_other_pid_namespace: bool,
    attached: Option<u64>,
    removed: bool,
    ours: bool,
    state: Option<String>,
    /// The ring fields, only on a ring of ours (flattened so that they are absent, not `null`,
    /// elsewhere, as before).
    #[serde(flatten)]
    ring: Option<Ring>,
}

#[derive(serde::Serialize)]
struct Ring {
    capacity: u64,
    bytes_in_flight: u64,
    consumer: Option<Endpoint>,
    producers: Vec<Endpoint>,
}

#[derive(serde::Serialize)]
struct Endpoint {
    pid: u32,
    alive: bool,
}

impl Record {
    fn of(o: &Object) -> Record {
        let endpoint = |(p, alive): (ipc::sync::ring::Endpoint, bool)| Endpoint {
            pid: p.id.pid,
            alive,
        };
        let ring = match &o.ours {
            Some(objects::Ours::Ring(r)) => Some(Ring {
                capacity: r.geometry.capacity,
                bytes_in_flight: r.bytes_in_flight(),
                consumer: r.consumer.map(endpoint),
                producers: r.producers.iter().copied().map(endpoint).collect(),
            }),
            _ => None,
        };
        Record {
            kind: o.kind.family(),
            name: o.name.clone(),
            key: o.key.map(key_text),
            id: o.id.map(i64::from),
            bytes: o.bytes,
            count: o.count,
            uid: o.uid,
            owner: o.uid.map(user_name),
            mode: o.mode.map(|m| format!("{m:04o}")),
            creator_pid: o.creator.map(|c| c.pid),
            creator_alive: o.creator.filter(|c| !c.other_namespace).map(|c| c.alive),
            creator_other_pid_namespace: o.creator.is_some_and(|c| c.other_namespace),
            attached: o.attached,
            removed: o.removed,
            ours: o.ours.is_some(),
            state: o.ours.as_ref().map(|ours| ours.summary()),
            ring,
        }
    }
}
