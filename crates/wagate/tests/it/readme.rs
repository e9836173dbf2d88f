//! The README is the newcomer's script: its five-minute tour, pasted block by block into a
//! shell against a fresh sandbox (the real binary), prints what the README says it prints, but
//! for ids, keys, wamids and times. A README change that the product does not follow, or the
//! other way round, fails here.

use std::process::Stdio;
use std::time::Duration;

use regex::Regex;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// A fenced block of the README: its language and its text.
struct Block {
    lang: String,
    text: String,
    /// The line its opening fence is on (1-based).
    line: usize,
    /// The next block starts on the line right after this one ends.
    followed_by_next: bool,
}

fn blocks(readme: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut open: Option<(String, usize, Vec<&str>)> = None;
    let mut last_close = 0;
    for (i, line) in readme.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                if let Some(prev) = out.last_mut() {
                    prev.followed_by_next = last_close + 1 == i;
                }
                open = Some((lang.trim().to_string(), i + 1, Vec::new()));
            }
            (Some(_), Some("")) => {
                if let Some((lang, start, lines)) = open.take() {
                    out.push(Block {
                        lang,
                        text: lines.join("\n"),
                        line: start,
                        followed_by_next: false,
                    });
                }
                last_close = i;
            }
            (Some((_, _, lines)), _) => lines.push(line),
            (None, None) => {}
        }
    }
    out
}

/// What differs from run to run, replaced by placeholders.
fn normalise(text: &str) -> Vec<String> {
    let rules = [
        (r"wamid\.[A-Za-z0-9=_+/-]+", "WAMID"),
        (r"\b(msg|hook|med|evt|key|acc)_[0-9a-f]{32}\b", "ID"),
        (r"wg_[0-9a-f]{48}", "KEY"),
        (r"whsec_[A-Za-z0-9+/=]+", "WHSEC"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "TIME"),
        (r"US\.\d+", "USER_ID"),
    ];
    let mut text = text.to_string();
    for (pattern, with) in rules {
        let re = Regex::new(pattern).expect("pattern");
        text = re.replace_all(&text, with).into_owned();
    }
    text.lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[tokio::test]
async fn the_readme_tour_prints_what_the_readme_says() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    let start = readme.find("## A five-minute tour").expect("the tour");
    let end = readme[start..]
        .find("**Your own service gets the events (hooks).**")
        .map(|e| start + e)
        .expect("the end of the tour's first part");
    let first_line = readme[..start].lines().count();
    let tour = blocks(&readme[start..end]);

    // A fresh sandbox, as the tour starts it, on ports of its own.
    let dir = wagate_store::testing::TestDir::new("readme");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_LOG", "warn")
        .env("WAGATE_BIND", "127.0.0.1:0")
        .env("WAGATE_SIM_BIND", "127.0.0.1:0")
        .current_dir(&*dir)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn wagate serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut banner = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("read") {
            let done = line.trim_start().starts_with("Sign-in");
            banner.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the banner appears");
    let field = |name: &str| {
        banner
            .iter()
            .find_map(|l| {
                l.trim_start()
                    .strip_prefix(name)
                    .map(|v| v.split_whitespace().next().unwrap_or_default().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in the banner: {banner:?}"))
    };
    let api = field("API ")
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    let sim = field("Simulator ").trim_start_matches("http://").to_string();
    let key = field("API key ");

    let mut ran = 0;
    let mut failures = Vec::new();
    for (i, b) in tour.iter().enumerate() {
        if b.lang != "sh" || b.text.trim_start().starts_with("export KEY=") || b.text.contains("cargo ") {
            continue;
        }
        let script = b
            .text
            .replace("localhost:8080", &api)
            .replace("127.0.0.1:8080", &api)
            .replace("localhost:8090", &sim)
            .replace("127.0.0.1:8090", &sim);
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -eo pipefail\n{script}"))
            .current_dir(&*dir)
            .env("KEY", &key)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("bash");
        ran += 1;
        let line = first_line + b.line;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            failures.push(format!(
                "README line {line}: the block failed: {}{stdout}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let Some(expected) = tour
            .get(i + 1)
            .filter(|n| b.followed_by_next && ["json", "text"].contains(&n.lang.as_str()))
        else {
            continue;
        };
        let (want, got) = (normalise(&expected.text), normalise(&stdout));
        if want != got {
            failures.push(format!(
                "README line {line}: the README shows\n{}\nbut it printed\n{}",
                want.join("\n"),
                got.join("\n")
            ));
        }
    }
    let _ = child.kill().await;
    println!("README tour: {ran} blocks run");
    assert!(ran >= 8, "the tour's blocks were found ({ran})");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
