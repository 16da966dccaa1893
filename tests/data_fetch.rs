//! `minima data fetch | list | verify` against a loopback HTTP server serving small
//! archives built here: resume after a dropped connection, checksum mismatches,
//! unsafe archive entries, list/verify output and unknown names. No internet.

use crate::common;
use common::text;
use md5::{Digest, Md5};
use minima::data::fetch::catalog::{Archive, DataSet, Expect, Variant};
use minima::data::fetch::{self, unpack::unpack, FetchOptions};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the loopback server answers.
#[derive(Clone, Copy)]
enum Behaviour {
    Normal,
    /// Cuts the first response short after this many body bytes.
    DropFirstAfter(usize),
    /// Sends the first response's first bytes at once, then one byte per 50 ms
    /// until the client goes away.
    TrickleFirstAfter(usize),
    /// Answers every request with the whole file (200), as servers without Range
    /// support do.
    IgnoreRange,
}

/// A one-thread HTTP/1.1 server on 127.0.0.1 that understands `Range: bytes=N-`.
struct Server {
    base: String,
    /// "PATH RANGE" per request, RANGE being "-" when there was none.
    log: Arc<Mutex<Vec<String>>>,
}

fn serve(files: HashMap<String, Vec<u8>>, behaviour: Behaviour) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let first = AtomicBool::new(true);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let now = match behaviour {
                Behaviour::DropFirstAfter(_) | Behaviour::TrickleFirstAfter(_)
                    if !first.swap(false, Ordering::SeqCst) =>
                {
                    Behaviour::Normal
                }
                other => other,
            };
            respond(stream, &files, &seen, now);
        }
    });
    Server { base, log }
}

fn respond(
    mut stream: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    log: &Mutex<Vec<String>>,
    behaviour: Behaviour,
) {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => request.push(byte[0]),
            _ => return,
        }
    }
    let request = String::from_utf8_lossy(&request).into_owned();
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    let asked = request
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("range")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "-".into());
    log.lock().unwrap().push(format!("{path} {asked}"));
    let Some(body) = files.get(&path) else {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let range = match behaviour {
        Behaviour::IgnoreRange => None,
        _ => asked
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok()),
    };
    let len = body.len();
    let head = match range {
        Some(start) if start >= len => format!(
            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Some(start) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            len - 1,
            len - start
        ),
        None => format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"),
    };
    let _ = stream.write_all(head.as_bytes());
    let rest = &body[range.unwrap_or(0).min(len)..];
    match behaviour {
        Behaviour::DropFirstAfter(n) => {
            let _ = stream.write_all(&rest[..n.min(rest.len())]);
        }
        Behaviour::TrickleFirstAfter(n) => {
            let n = n.min(rest.len());
            let _ = stream.write_all(&rest[..n]);
            for b in &rest[n..] {
                std::thread::sleep(Duration::from_millis(50));
                if stream.write_all(std::slice::from_ref(b)).is_err() {
                    return;
                }
            }
        }
        Behaviour::Normal | Behaviour::IgnoreRange => {
            let _ = stream.write_all(rest);
        }
    }
    let _ = stream.flush();
}

/// Deterministic bytes that gzip cannot shrink much.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

fn gzip(tar: Vec<u8>) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, *data).unwrap();
    }
    gzip(builder.into_inner().unwrap())
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A data set whose archive is `archive` (md5 and size of the test's bytes).
fn test_set(archive: &[u8], data_len: u64) -> &'static DataSet {
    let md5: &'static str = Box::leak(md5_hex(archive).into_boxed_str());
    let files: &'static [Expect] = Box::leak(Box::new([
        Expect::File {
            path: "set/a.bin",
            size: Some(data_len),
            md5: None,
        },
        Expect::File {
            path: "set/b.txt",
            size: Some(5),
            md5: None,
        },
    ]));
    let variants: &'static [Variant] = Box::leak(Box::new([Variant {
        format: "binary",
        folder: "set",
        archive: Some(Archive {
            url: "https://example.invalid/set.tar.gz",
            file: "set.tar.gz",
            md5: Some(md5),
            size: Some(archive.len() as u64),
        }),
        files,
    }]));
    Box::leak(Box::new(DataSet {
        name: "testset",
        manual: None,
        variants,
    }))
}

#[test]
fn a_dropped_connection_is_resumed_with_a_range_request() {
    let data = noise(200_000, 1);
    let archive = tar_gz(&[("set/a.bin", &data), ("set/b.txt", b"hello")]);
    let cut = archive.len() / 2;
    let server = serve(
        HashMap::from([("/set.tar.gz".to_string(), archive.clone())]),
        Behaviour::DropFirstAfter(cut),
    );
    let set = test_set(&archive, data.len() as u64);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let options = FetchOptions {
        root: Some(&root),
        mirror: Some(&server.base),
        keep_archive: true,
    };
    fetch::fetch(set, &set.variants[0], &options).unwrap();

    assert_eq!(
        *server.log.lock().unwrap(),
        vec![
            "/set.tar.gz -".to_string(),
            format!("/set.tar.gz bytes={cut}-")
        ]
    );
    assert_eq!(std::fs::read(root.join("set.tar.gz")).unwrap(), archive);
    assert!(!root.join("set.tar.gz.part").exists());
    assert_eq!(std::fs::read(root.join("set/a.bin")).unwrap(), data);
    assert_eq!(std::fs::read(root.join("set/b.txt")).unwrap(), b"hello");

    // A second fetch finds everything in place and asks the server for nothing.
    fetch::fetch(set, &set.variants[0], &options).unwrap();
    assert_eq!(server.log.lock().unwrap().len(), 2);
}

#[test]
fn a_part_file_left_by_an_earlier_run_is_resumed_and_the_archive_removed() {
    let data = noise(50_000, 2);
    let archive = tar_gz(&[("set/a.bin", &data), ("set/b.txt", b"hello")]);
    let server = serve(
        HashMap::from([("/set.tar.gz".to_string(), archive.clone())]),
        Behaviour::Normal,
    );
    let set = test_set(&archive, data.len() as u64);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("set.tar.gz.part"), &archive[..1000]).unwrap();
    let options = FetchOptions {
        root: Some(&root),
        mirror: Some(&server.base),
        keep_archive: false,
    };
    fetch::fetch(set, &set.variants[0], &options).unwrap();
    assert_eq!(
        *server.log.lock().unwrap(),
        vec!["/set.tar.gz bytes=1000-".to_string()]
    );
    assert_eq!(std::fs::read(root.join("set/a.bin")).unwrap(), data);
    assert!(!root.join("set.tar.gz").exists() && !root.join("set.tar.gz.part").exists());
}

#[test]
fn a_server_without_range_support_replaces_the_part() {
    let data = noise(30_000, 3);
    let archive = tar_gz(&[("set/a.bin", &data), ("set/b.txt", b"hello")]);
    let server = serve(
        HashMap::from([("/set.tar.gz".to_string(), archive.clone())]),
        Behaviour::IgnoreRange,
    );
    let set = test_set(&archive, data.len() as u64);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("set.tar.gz.part"), vec![0xEE; 1000]).unwrap();
    let options = FetchOptions {
        root: Some(&root),
        mirror: Some(&server.base),
        keep_archive: true,
    };
    fetch::fetch(set, &set.variants[0], &options).unwrap();
    assert_eq!(
        *server.log.lock().unwrap(),
        vec!["/set.tar.gz bytes=1000-".to_string()]
    );
    assert_eq!(std::fs::read(root.join("set.tar.gz")).unwrap(), archive);
    assert_eq!(std::fs::read(root.join("set/a.bin")).unwrap(), data);
}

#[test]
fn a_truncated_archive_names_the_file_and_unpacks_nothing() {
    let archive = tar_gz(&[("set/a.bin", &noise(20_000, 4))]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.tar.gz");
    std::fs::write(&path, &archive[..archive.len() - 100]).unwrap();
    let target = dir.path().join("out");
    std::fs::create_dir_all(&target).unwrap();
    let err = format!("{:#}", unpack(&path, &target).unwrap_err());
    assert!(
        err.contains(&format!("{} is corrupt or truncated", path.display())),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

/// A gzipped tar whose second entry has a raw `name`, type `kind` and link target.
fn evil_archive(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut good = tar::Header::new_gnu();
    good.set_size(2);
    good.set_mode(0o644);
    builder
        .append_data(&mut good, "set/good.txt", &b"ok"[..])
        .unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    let body: &[u8] = if kind == tar::EntryType::Regular {
        b"evil"
    } else {
        b""
    };
    header.set_size(body.len() as u64);
    // Written raw: tar's own path setters refuse these names.
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_cksum();
    builder.append(&header, body).unwrap();
    gzip(builder.into_inner().unwrap())
}

#[test]
fn entries_leaving_the_target_are_refused_by_name() {
    let cases = [
        ("../evil.txt", tar::EntryType::Regular, None, "`..`"),
        (
            "/tmp/minima-evil.txt",
            tar::EntryType::Regular,
            None,
            "absolute path",
        ),
        (
            "set/link",
            tar::EntryType::Symlink,
            Some("/etc"),
            "symbolic link",
        ),
        (
            "set/hard",
            tar::EntryType::Link,
            Some("set/good.txt"),
            "hard link",
        ),
    ];
    for (name, kind, link, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("evil.tar.gz");
        std::fs::write(&archive, evil_archive(name, kind, link)).unwrap();
        let target = dir.path().join("out");
        std::fs::create_dir_all(&target).unwrap();
        let err = format!("{:#}", unpack(&archive, &target).unwrap_err());
        assert!(
            err.contains(&format!("refusing archive entry `{name}`")) && err.contains(why),
            "{err}"
        );
        assert!(err.contains("evil.tar.gz"), "{err}");
        // Nothing lands, not even the good entry before the bad one.
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "{name}");
        assert!(!dir.path().join("evil.txt").exists());
    }
    assert!(!Path::new("/tmp/minima-evil.txt").exists());
}

fn minima_cmd(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = common::minima_command();
    cmd.args(args)
        .current_dir(dir)
        .env("MINIMA_DATA", dir.join("data"))
        .env("HOME", dir)
        .env_remove("XDG_CACHE_HOME")
        .env_remove(fetch::MIRROR_ENV);
    // The loopback server must be reached directly.
    for proxy in [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ] {
        cmd.env_remove(proxy);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn minima_with(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    minima_cmd(args, dir, env).output().expect("minima runs")
}

#[test]
fn a_checksum_mismatch_names_file_expected_and_found() {
    let fake = tar_gz(&[("cifar-10-batches-bin/data_batch_1.bin", b"not cifar")]);
    let found = md5_hex(&fake);
    let server = serve(
        HashMap::from([("/cifar-10-binary.tar.gz".to_string(), fake.clone())]),
        Behaviour::Normal,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = minima_with(
        &["data", "fetch", "cifar10", "--mirror", &server.base],
        dir.path(),
        &[],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for needle in [
        "checksum mismatch for cifar-10-binary.tar.gz",
        &format!("{}/cifar-10-binary.tar.gz", server.base),
        "expected 170052171 bytes with md5 c32a1d4ab5d03f1284b67883e8d87530",
        &format!("found {} bytes with md5 {found}", fake.len()),
    ] {
        assert!(err.contains(needle), "missing `{needle}` in: {err}");
    }
    let cifar = dir.path().join("data/cifar10");
    assert!(!cifar.join("cifar-10-binary.tar.gz.part").exists());
    assert!(!cifar.join("cifar-10-batches-bin").exists());
}

#[test]
fn cinic10_is_fetched_through_the_mirror_variable_and_then_verified() {
    let png = b"\x89PNG\r\n\x1a\nnot really";
    let entries: Vec<(String, &[u8])> = ["airplane", "cat"]
        .iter()
        .map(|c| (format!("train/{c}/{c}_0.png"), &png[..]))
        .collect();
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(p, d)| (p.as_str(), *d)).collect();
    let server = serve(
        HashMap::from([("/CINIC-10.tar.gz".to_string(), tar_gz(&refs))]),
        Behaviour::Normal,
    );
    let dir = tempfile::tempdir().unwrap();
    let env = [(fetch::MIRROR_ENV, server.base.as_str())];
    let out = minima_with(&["data", "fetch", "cinic10"], dir.path(), &env);
    let err = text(&out.stderr);
    // Downloaded and unpacked where loaders look, but far too few images.
    assert_eq!(out.status.code(), Some(1), "{err}");
    let cinic = dir.path().join("data/cinic10");
    assert_eq!(
        std::fs::read(cinic.join("train/cat/cat_0.png")).unwrap(),
        png
    );
    assert!(
        err.contains("train/airplane/: expected 9000 .png files, found 1"),
        "{err}"
    );
    assert!(err.contains("valid/airplane/: missing"), "{err}");
    assert!(
        cinic.join("CINIC-10.tar.gz").is_file(),
        "kept for inspection"
    );

    let out = minima_with(&["data", "verify", "cinic10"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    assert!(report.contains("cinic10 png: PROBLEMS"), "{report}");
    assert!(
        report.contains("train/cat/: expected 9000 .png files, found 1"),
        "{report}"
    );
    assert_eq!(*server.log.lock().unwrap(), vec!["/CINIC-10.tar.gz -"]);
}

/// A CIFAR-10 binary folder with files of the right sizes (sparse: no disk used).
fn fake_cifar10_bin(root: &Path) {
    let folder = root.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&folder).unwrap();
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for name in names {
        let file = std::fs::File::create(folder.join(name)).unwrap();
        file.set_len(10_000 * 3073).unwrap();
    }
    std::fs::write(folder.join("batches.meta.txt"), "airplane\n").unwrap();
}

#[test]
fn list_and_verify_say_what_is_there_and_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let cifar = dir.path().join("data/cifar10");
    fake_cifar10_bin(&cifar);

    let out = minima_with(&["data", "list"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    let list = text(&out.stdout);
    let row = |name: &str, format: &str| {
        list.lines()
            .find(|l| l.split_whitespace().take(2).eq([name, format]))
            .unwrap_or_else(|| panic!("no {name} {format} row in:\n{list}"))
            .to_string()
    };
    let bin = row("cifar10", "binary");
    assert!(bin.contains("present"), "{bin}");
    assert!(
        bin.contains(&format!(
            "{} ($MINIMA_DATA)",
            cifar.join("cifar-10-batches-bin").display()
        )),
        "{bin}"
    );
    assert!(row("cifar10", "python").contains("missing"));
    assert!(row("cinic10", "png").contains("missing"));
    assert!(row("fashion_mnist", "idx").contains("missing"));

    let out = minima_with(&["data", "verify", "cifar10"], dir.path(), &[]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains("cifar10 binary: ok (7 entries checked"),
        "{report}"
    );
    assert!(report.contains("cifar10 python: not present"), "{report}");

    // A truncated batch and a corrupt python meta file are both reported.
    std::fs::File::options()
        .write(true)
        .open(cifar.join("cifar-10-batches-bin/data_batch_3.bin"))
        .unwrap()
        .set_len(1000)
        .unwrap();
    let py = cifar.join("cifar-10-batches-py");
    std::fs::create_dir_all(&py).unwrap();
    std::fs::write(py.join("batches.meta"), b"junk").unwrap();
    let out = minima_with(&["data", "verify", "cifar10"], dir.path(), &[]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    for needle in [
        "cifar-10-batches-bin/data_batch_3.bin: expected 30730000 bytes, found 1000",
        "cifar-10-batches-py/data_batch_1: missing",
        "cifar-10-batches-py/batches.meta: expected 158 bytes, found 4",
    ] {
        assert!(report.contains(needle), "missing `{needle}` in:\n{report}");
    }
    assert!(
        text(&out.stderr).contains("cifar10 in"),
        "{}",
        text(&out.stderr)
    );

    let out = minima_with(&["data", "verify", "cifar100"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("get it with `minima data fetch cifar100`"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn unknown_names_and_formats_are_usage_errors_listing_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["data", "fetch", "imagenet"][..],
        &["data", "verify", "cifar"][..],
    ] {
        let out = minima_with(args, dir.path(), &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("known: cifar10, cifar100, cinic10, restricted_imagenet, fashion_mnist"),
            "{err}"
        );
    }
    let out = minima_with(
        &["data", "fetch", "cifar100", "--format", "png"],
        dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("formats: binary, python"));
    let out = minima_with(&["data", "fetch", "fashion_mnist"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("apt install dataset-fashion-mnist"));
}

#[test]
fn ctrl_c_stops_a_fetch_at_once_and_the_next_run_resumes() {
    let png = noise(4000, 5);
    let archive = tar_gz(&[("train/cat/cat_0.png", &png)]);
    let half = archive.len() / 2;
    let server = serve(
        HashMap::from([("/CINIC-10.tar.gz".to_string(), archive.clone())]),
        Behaviour::TrickleFirstAfter(half),
    );
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("data/cinic10/CINIC-10.tar.gz.part");
    let mut child = minima_cmd(
        &["data", "fetch", "cinic10", "--mirror", &server.base],
        dir.path(),
        &[],
    )
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let start = Instant::now();
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < half as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "download never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let killed = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "Ctrl-C took effect late"
    );
    assert_eq!(status.code(), Some(130), "{status:?}");
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept >= half as u64 && kept < archive.len() as u64, "{kept}");

    let out = minima_with(
        &["data", "fetch", "cinic10", "--mirror", &server.base],
        dir.path(),
        &[],
    );
    // The resumed download is complete and unpacked (CINIC's image counts then fail).
    assert_eq!(
        server.log.lock().unwrap().last().cloned(),
        Some(format!("/CINIC-10.tar.gz bytes={kept}-"))
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let cinic = dir.path().join("data/cinic10");
    assert_eq!(
        std::fs::read(cinic.join("train/cat/cat_0.png")).unwrap(),
        png
    );
    assert_eq!(
        std::fs::read(cinic.join("CINIC-10.tar.gz")).unwrap(),
        archive
    );
}
