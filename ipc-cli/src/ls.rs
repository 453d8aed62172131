//! `ipc ls [--json]`: every IPC object on the machine, in one table. See [`crate::objects`]
//! for the names it prints and how objects of this framework are recognised.

use std::io::{self, Write};

use crate::failure::{Failure, note, say};
use crate::objects::{self, Object, key_text, user_name};
use crate::text::{escape, json_string};

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
            writeln!(out, "{}", json(o)).map_err(Failure::stdout)?;
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

fn json(o: &Object) -> String {
    let num = |v: Option<u64>| v.map_or_else(|| "null".to_owned(), |v| v.to_string());
    let int = |v: Option<i64>| v.map_or_else(|| "null".to_owned(), |v| v.to_string());
    let mut fields = vec![
        format!("\"kind\":{}", json_string(o.kind.family())),
        format!("\"name\":{}", json_string(&o.name)),
        format!(
            "\"key\":{}",
            o.key
                .map_or_else(|| "null".to_owned(), |k| json_string(&key_text(k)))
        ),
        format!("\"id\":{}", int(o.id.map(i64::from))),
        format!("\"bytes\":{}", num(o.bytes)),
        format!("\"count\":{}", num(o.count)),
        format!("\"uid\":{}", num(o.uid.map(u64::from))),
        format!(
            "\"owner\":{}",
            o.uid
                .map_or_else(|| "null".to_owned(), |u| json_string(&user_name(u)))
        ),
        format!(
            "\"mode\":{}",
            o.mode
                .map_or_else(|| "null".to_owned(), |m| json_string(&format!("{m:04o}")))
        ),
        format!(
            "\"creator_pid\":{}",
            num(o.creator.map(|c| u64::from(c.pid)))
        ),
        format!(
            "\"creator_alive\":{}",
            o.creator
                .filter(|c| !c.other_namespace)
                .map_or_else(|| "null".to_owned(), |c| c.alive.to_string())
        ),
        format!(
            "\"creator_other_pid_namespace\":{}",
            o.creator.is_some_and(|c| c.other_namespace)
        ),
        format!("\"attached\":{}", num(o.attached)),
        format!("\"removed\":{}", o.removed),
        format!("\"ours\":{}", o.ours.is_some()),
    ];
    match &o.ours {
        Some(ours) => {
            fields.push(format!("\"state\":{}", json_string(&ours.summary())));
            if let objects::Ours::Ring(r) = ours {
                fields.push(format!("\"capacity\":{}", r.geometry.capacity));
                fields.push(format!("\"bytes_in_flight\":{}", r.bytes_in_flight()));
                let pid = |p: Option<(ipc::sync::ring::Endpoint, bool)>| {
                    p.map_or_else(
                        || "null".to_owned(),
                        |(p, alive)| format!("{{\"pid\":{},\"alive\":{alive}}}", p.id.pid),
                    )
                };
                fields.push(format!("\"consumer\":{}", pid(r.consumer)));
                let producers: Vec<String> = r.producers.iter().map(|p| pid(Some(*p))).collect();
                fields.push(format!("\"producers\":[{}]", producers.join(",")));
            }
        }
        None => fields.push("\"state\":null".to_owned()),
    }
    format!("{{{}}}", fields.join(","))
}
