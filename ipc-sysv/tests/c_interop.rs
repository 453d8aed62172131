//! Interoperation with a plain C program using `ftok` / `shmget` / `shmat`: the C side creates
//! a 4096-byte segment with `ftok(path, 0x6666)` and mode 0666; we attach and write `A`..`Z`,
//! the C side checks them; then the C side writes `a`..`z` and we check them. The two sides
//! take turns through the C program's stdin and stdout lines, never by sleeping.
//!
//! Skipped, with a message on stderr, only where no C compiler (`cc`) exists.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use ipc_core::{Error, Segment};
use ipc_sysv::Key;
use ipc_sysv::shm::{Access, Expect, SysvSegment};

const PROGRAM: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

static void expect_line(const char *want) {
    char line[64];
    if (!fgets(line, sizeof line, stdin)) { fprintf(stderr, "c: stdin closed\n"); exit(3); }
    line[strcspn(line, "\n")] = 0;
    if (strcmp(line, want) != 0) { fprintf(stderr, "c: got '%s', want '%s'\n", line, want); exit(3); }
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    key_t key = ftok(argv[1], 0x6666);
    if (key == -1) { perror("ftok"); return 1; }
    int id = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0666);
    if (id == -1) { perror("shmget"); return 1; }
    char *p = shmat(id, NULL, 0);
    if (p == (char *)-1) { perror("shmat"); shmctl(id, IPC_RMID, NULL); return 1; }
    printf("created %d %d\n", (int)key, id);
    fflush(stdout);

    expect_line("written");
    int ok = 1;
    for (int i = 0; i < 26; i++) ok &= p[i] == 'A' + i;
    printf(ok ? "ok\n" : "bad\n");
    fflush(stdout);

    expect_line("your turn");
    for (int i = 0; i < 26; i++) p[2048 + i] = 'a' + i;
    printf("written\n");
    fflush(stdout);

    expect_line("done");
    shmdt(p);
    if (shmctl(id, IPC_RMID, NULL) == -1) { perror("shmctl"); return 1; }
    printf("removed\n");
    fflush(stdout);
    return ok ? 0 : 4;
}
"#;

/// A directory of its own, removed at the end.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles the C program; `None` (after saying so) where there is no C compiler.
fn compile(dir: &Path) -> Option<PathBuf> {
    let src = dir.join("shm_peer.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let bin = dir.join("shm_peer");
    match Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .status()
    {
        Ok(status) => {
            assert!(status.success(), "cc failed to compile {}", src.display());
            Some(bin)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "SKIPPED: no C compiler (`cc`) on this machine: the C interop test did not run"
            );
            None
        }
        Err(e) => panic!("running cc: {e}"),
    }
}

struct CPeer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CPeer {
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the C program ended early");
        line.trim_end().to_owned()
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for CPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_c_program_and_we_share_a_segment_both_ways() {
    let dir = std::env::temp_dir().join(format!("ipc-sysv-c-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = TempDir(dir);
    let Some(bin) = compile(&dir.0) else { return };
    let token = dir.0.join("ftok-token");
    std::fs::write(&token, b"").unwrap();
    let key = Key::Ftok {
        path: token.to_str().unwrap().to_owned(),
        proj_id: 0x66,
    };
    // Removes the segment whatever happens below.
    let _guard = common::KeyGuard(key.clone());

    // `timeout` bounds the C program: a hang becomes end-of-file here, not a stuck test.
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(&bin)
        .arg(&token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut c = CPeer {
        child,
        stdin,
        stdout,
    };

    let created = c.line();
    let fields: Vec<&str> = created.split(' ').collect();
    assert_eq!(fields[0], "created", "{created}");
    let c_key: i32 = fields[1].parse().unwrap();
    assert_eq!(
        c_key,
        key.resolve().unwrap(),
        "ftok agrees with the C library"
    );
    let c_id: i32 = fields[2].parse().unwrap();

    // Mode 0666 as the C side made it: accepted only because we say so.
    assert!(matches!(
        SysvSegment::open(&key, &Expect::size(4096)),
        Err(Error::Incompatible { .. })
    ));
    let seg = SysvSegment::open(&key, &Expect::size(4096).mode(0o666)).unwrap();
    assert_eq!(seg.id(), c_id);
    let st = seg.stat().unwrap();
    assert_eq!(st.mode, 0o666);
    assert_eq!(st.size, 4096);
    assert_ne!(
        st.creator_pid as u32,
        std::process::id(),
        "the C side created it"
    );
    let mem = seg.attach(Access::ReadWrite).unwrap();
    let letters: Vec<u8> = (b'A'..=b'Z').collect();
    mem.write_at(0, &letters).unwrap();
    c.say("written");
    assert_eq!(c.line(), "ok", "the C side read back what we wrote");

    c.say("your turn");
    assert_eq!(c.line(), "written");
    let mut got = [0u8; 26];
    mem.read_at(2048, &mut got).unwrap();
    let want: Vec<u8> = (b'a'..=b'z').collect();
    assert_eq!(&got[..], &want[..], "we read what the C side wrote");

    c.say("done");
    assert_eq!(c.line(), "removed");
    let status = c.child.wait().unwrap();
    assert!(status.success(), "{status}");
    // Removed by the C side, still attached by us: usable until we detach.
    mem.write_at(0, b"z").unwrap();
    assert!(seg.stat().unwrap().removed);
    mem.detach();
    assert!(matches!(seg.stat(), Err(Error::NotFound { .. })));
}
