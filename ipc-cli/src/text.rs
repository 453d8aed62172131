//! Text the command shows: escaped for a terminal, and JSON lines. The helpers live in
//! `ipc-bench`, whose report needs the same ones and which this crate already depends on.

pub use ipc_bench::text::{escape, json_line, note};
