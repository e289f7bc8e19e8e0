//! `ppe gen` and `ppe bench`: the generator writes the same files for the same N, and what it
//! writes imports on every backend with no rejected row, a clean chain and clean
//! conservation; `ppe bench --quick` runs end to end and prints its table. No timing is
//! asserted: the numbers depend on the machine.

use ppe_tests::{backends, spawn_app};

fn read_all(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("the data set folder")
        .map(|e| {
            let e = e.expect("an entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("a file"),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_same_n_gives_the_same_files_and_another_n_other_files() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let sa = ppe_cli::gen::generate(200, a.path()).unwrap();
    let sb = ppe_cli::gen::generate(200, b.path()).unwrap();
    ppe_cli::gen::generate(201, c.path()).unwrap();
    assert_eq!(sa, sb);
    let (fa, fb, fc) = (read_all(a.path()), read_all(b.path()), read_all(c.path()));
    assert_eq!(fa.len(), ppe_cli::gen::IMPORT_ORDER.len());
    assert!(fa == fb, "two runs with N=200 wrote different files");
    assert!(fa != fc, "N=200 and N=201 wrote the same files");
    let kinds: Vec<&str> = ppe_cli::gen::IMPORT_ORDER.iter().map(|(f, _)| *f).collect();
    for (name, bytes) in &fa {
        assert!(kinds.contains(&name.as_str()), "unexpected file {name}");
        let rows = bytes.iter().filter(|b| **b == b'\n').count();
        assert!(rows > 1, "{name} has no data row");
    }
}

#[tokio::test]
async fn a_generated_data_set_imports_cleanly_on_every_backend() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap();
        let (ok, text) = app
            .ppe(&["gen", "--documents", "200", "--out", out, "--import"])
            .await;
        assert!(ok, "{backend:?}: {text}");
        for (file, _) in ppe_cli::gen::IMPORT_ORDER {
            assert!(text.contains(&format!("{file}: ")), "{backend:?}: {text}");
        }
        assert!(
            text.lines()
                .filter(|l| l.contains(" rows, "))
                .all(|l| l.ends_with(" 0 rejected")),
            "{backend:?}: {text}"
        );
        assert_eq!(
            app.entry_count().await,
            200,
            "{backend:?}: one entry per document"
        );
        let (ok, text) = app.ppe(&["verify"]).await;
        assert!(
            ok && text.starts_with("ok: 200 entries"),
            "{backend:?}: {text}"
        );
        let (ok, text) = app.ppe(&["report", "conservation"]).await;
        assert!(
            ok && text.contains("ok: no violation"),
            "{backend:?}: {text}"
        );
        // Importing the same files again changes nothing.
        let (ok, text) = app
            .ppe(&["gen", "--documents", "200", "--out", out, "--import"])
            .await;
        assert!(ok, "{backend:?}: {text}");
        assert!(
            text.lines()
                .filter(|l| l.contains(" rows, "))
                .all(|l| l.contains(" 0 created") && l.ends_with(" 0 rejected")),
            "{backend:?}: {text}"
        );
        assert_eq!(
            app.entry_count().await,
            200,
            "{backend:?}: a replay adds nothing"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn bench_quick_prints_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let cli = <ppe_cli::Cli as clap::Parser>::try_parse_from([
        "ppe",
        "bench",
        "--quick",
        "--backends",
        "sqlite",
        "--clients",
        "16",
        "--dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let mut out = Vec::new();
    let ok = ppe_cli::run(cli, &mut out).await.expect("the bench runs");
    let text = String::from_utf8(out).unwrap();
    assert!(ok, "{text}");
    // The HTTP row names the load it ran, not the default's.
    assert!(
        text.lines()
            .any(|l| l.starts_with("HTTP documents/s (16 clients) |")),
        "{text}"
    );
    for row in [
        "import postings/s",
        "import / baseline",
        "HTTP p50 / p99 ms",
        "HTTP batches decided ahead",
        "reconciliation s",
        "hledger balance s",
        "lot trace ms",
        "import peak memory MB",
    ] {
        assert!(text.contains(row), "no {row:?} row in\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("metric") && l.contains(" sqlite |")),
        "{text}"
    );
}

/// `--skip` leaves steps out and says so in their rows; the rest of the table is measured.
#[tokio::test]
async fn bench_skip_leaves_steps_out_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let parse = |skip: &str| {
        <ppe_cli::Cli as clap::Parser>::try_parse_from([
            "ppe",
            "bench",
            "--quick",
            "--backends",
            "sqlite",
            "--skip",
            skip,
            "--dir",
            dir.path().to_str().unwrap(),
        ])
        .unwrap()
    };
    let mut out = Vec::new();
    let ok = ppe_cli::run(parse("peers,http,separate"), &mut out)
        .await
        .expect("the bench runs");
    let text = String::from_utf8(out).unwrap();
    assert!(ok, "{text}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name:?} row in\n{text}"))
            .to_owned()
    };
    for name in [
        "HTTP documents/s",
        "HTTP p50 / p99 ms",
        "HTTP batches decided ahead",
        "separate tb / cons / verify s",
        "hledger balance s",
        "ledger balance s",
    ] {
        assert!(row(name).contains("skipped"), "{}", row(name));
    }
    // A test harness is not the `ppe` binary: the import ran in process, and its peak
    // memory says so rather than passing for the import's alone.
    assert!(
        row("import peak memory MB").contains("(in process)"),
        "{}",
        row("import peak memory MB")
    );
    // What was not skipped was measured: postings were counted and reconciled.
    assert!(
        !row("documents / postings imported").contains(" / 0 "),
        "{text}"
    );
    assert!(!row("reconciliation s").contains("FAILED"), "{text}");
    let mut out = Vec::new();
    let e = ppe_cli::run(parse("nothing"), &mut out)
        .await
        .expect_err("an unknown step is refused");
    assert!(e.to_string().contains("unknown step \"nothing\""), "{e}");
}
