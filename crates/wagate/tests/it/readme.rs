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
    /// Only blank lines stand between this block and the next.
    followed_by_next: bool,
}

fn blocks(readme: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    // (language, first line, the fence's indentation, lines)
    let mut open: Option<(String, usize, usize, Vec<String>)> = None;
    // Since the last block closed: only blank lines?
    let mut only_blank = false;
    for (i, line) in readme.lines().enumerate() {
        // A fence may be indented (a block inside a list item); its lines lose that indentation.
        let indent = line.len() - line.trim_start().len();
        match (&mut open, line.trim_start().strip_prefix("```")) {
            (None, Some(lang)) => {
                if let Some(prev) = out.last_mut() {
                    prev.followed_by_next = only_blank;
                }
                open = Some((lang.trim().to_string(), i + 1, indent, Vec::new()));
            }
            (Some(_), Some("")) => {
                if let Some((lang, start, _, lines)) = open.take() {
                    out.push(Block {
                        lang,
                        text: lines.join("\n"),
                        line: start,
                        followed_by_next: false,
                    });
                }
                only_blank = true;
            }
            (Some((_, _, fence, lines)), _) => {
                let cut = indent.min(*fence);
                lines.push(line[cut..].to_string());
            }
            (None, None) => only_blank &= line.trim().is_empty(),
        }
    }
    out
}

/// A transcript's commands (`$ ` lines and the lines continuing them) and what they printed.
fn split_transcript(text: &str) -> (String, String) {
    let (mut commands, mut printed) = (Vec::new(), Vec::new());
    let mut continued = false;
    for line in text.lines() {
        match (continued, line.strip_prefix("$ ")) {
            (true, _) => commands.push(line),
            (false, Some(command)) => commands.push(command),
            (false, None) => printed.push(line),
        }
        continued = commands.last().is_some_and(|c| c.ends_with('\\')) && (continued || line.starts_with("$ "));
    }
    (commands.join("\n"), printed.join("\n"))
}

/// What differs from run to run, replaced by placeholders.
fn normalise(text: &str) -> Vec<String> {
    let rules = [
        (r"wamid\.[A-Za-z0-9=_+/-]+", "WAMID"),
        (r"\b(msg|hook|med|evt|key|acc)_[0-9a-f]{32}\b", "ID"),
        (r"wg_[0-9a-f]{48}", "KEY"),
        (r"whsec_[A-Za-z0-9+/=]+", "WHSEC"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "TIME"),
        (r"\d{4}-\d\d-\d\d \d\d:\d\d", "TIME"),
        (r"US\.\d+", "USER_ID"),
        (r#""latency_ms":\d+"#, r#""latency_ms":N"#),
        (r"\bk[0-9a-f]{8}\b", "KEY_ID"),
        (r"in \d+\.\d s\b", "in T s"),
        (r"\bwg_[0-9a-f]{4}\b", "PREFIX"),
        (r"cs_[0-9a-f]{32}\.[0-9a-f]+", "STATE"),
    ];
    let mut text = text.to_string();
    for (pattern, with) in rules {
        let re = Regex::new(pattern).expect("pattern");
        text = re.replace_all(&text, with).into_owned();
    }
    // Columns padded to the width of an id line up whatever the placeholder's width.
    let spaces = Regex::new(r" {2,}").expect("pattern");
    text.lines()
        .map(|l| spaces.replace_all(l.trim_end(), "  ").into_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[tokio::test]
async fn the_readme_tour_prints_what_the_readme_says() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    // The parts of the README a newcomer pastes into a shell against the sandbox, in order:
    // (where a part begins, where it ends).
    let parts = [
        ("## A five-minute tour", "Stop the gateway with Ctrl-C"),
        (
            "In the sandbox, for instance (every administrative action",
            "### Connect WhatsApp",
        ),
        ("The sandbox plays the whole flow", "A gateway with a Meta app"),
        ("The sandbox trusts a stand-in issuer", "**Tenants.**"),
        ("In sandbox mode, after the user has written", "## Events"),
        (
            "answers the same as JSON. In the sandbox",
            "The webhook check asks Meta",
        ),
        ("`wagate send` talks to a running gateway", "A CSV has a header row"),
        (
            "With SQLite and its generated key file, one gateway",
            "- **Poison webhooks.**",
        ),
    ];
    let mut tour: Vec<(usize, Block)> = Vec::new();
    for (from, to) in parts {
        let start = readme.find(from).unwrap_or_else(|| panic!("`{from}` is in the README"));
        let end = readme[start..]
            .find(to)
            .map(|e| start + e)
            .unwrap_or_else(|| panic!("`{to}` follows `{from}`"));
        let first_line = readme[..start].lines().count();
        tour.extend(blocks(&readme[start..end]).into_iter().map(|b| (first_line, b)));
    }
    // In the README's order, as a newcomer reads it.
    tour.sort_by_key(|(first_line, b)| first_line + b.line);
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
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_wagate"))
        .parent()
        .expect("the binary's directory")
        .display()
        .to_string();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    // The README's hook receiver listens on 9000; here on a port of its own.
    let receiver_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let receiver_addr = format!("127.0.0.1:{receiver_port}");
    let mut receiver: Option<tokio::process::Child> = None;
    for (i, (first_line, b)) in tour.iter().enumerate() {
        let line = first_line + b.line;
        // The receiver the README has the reader save.
        if b.lang == "python" && b.text.contains("receiver.py") {
            std::fs::write(
                dir.join("receiver.py"),
                b.text.replace("9000", &receiver_port.to_string()),
            )
            .expect("receiver.py");
            continue;
        }
        // A transcript (`$ command`, then what it printed): the commands run as one script.
        let transcript = ["", "text"].contains(&b.lang.as_str()) && b.text.trim_start().starts_with("$ ");
        if !transcript
            && (b.lang != "sh" || b.text.trim_start().starts_with("export KEY=") || b.text.contains("cargo "))
        {
            continue;
        }
        let (commands, printed) = match transcript {
            true => split_transcript(&b.text),
            false => (b.text.clone(), String::new()),
        };
        let script = commands
            .replace("localhost:8080", &api)
            .replace("127.0.0.1:8080", &api)
            .replace("localhost:8090", &sim)
            .replace("127.0.0.1:8090", &sim)
            .replace("127.0.0.1:9000", &receiver_addr);
        // What one block exports, the next sees, as in one terminal.
        let script = format!("[ -f .readme-env ] && source .readme-env\n{script}\nexport -p > .readme-env");
        // The receiver runs on, as in a terminal of its own: what it prints is read from a file.
        if commands.trim() == "python3 receiver.py" {
            let log = std::fs::File::create(dir.join("receiver.out")).expect("receiver.out");
            receiver = Some(
                Command::new("bash")
                    .arg("-c")
                    .arg("source .readme-env && exec python3 receiver.py")
                    .current_dir(&*dir)
                    .stdin(Stdio::null())
                    .stdout(log)
                    .kill_on_drop(true)
                    .spawn()
                    .expect("python3 receiver.py"),
            );
            ran += 1;
            if let Some((_, expected)) = tour.get(i + 1).filter(|(_, n)| b.followed_by_next && n.lang == "text") {
                let want = normalise(&expected.text);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                let got = loop {
                    let got = normalise(&std::fs::read_to_string(dir.join("receiver.out")).unwrap_or_default());
                    if got.len() >= want.len() || tokio::time::Instant::now() > deadline {
                        break got;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
                if got != want {
                    failures.push(format!(
                        "README line {line}: the receiver should print\n{}\nbut printed\n{}",
                        want.join("\n"),
                        got.join("\n")
                    ));
                }
            }
            continue;
        }
        // Rotating the key file is for a stopped gateway, as the README says.
        if commands.contains("secrets rotate") {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
        let out = Command::new("bash")
            .arg("-c")
            .arg(match transcript {
                // A transcript shows failures too (`echo $?`), and what went to standard error.
                true => format!("exec 2>&1\n{script}"),
                false => format!("set -eo pipefail\n{script}"),
            })
            .current_dir(&*dir)
            .env("KEY", &key)
            // `wagate …` as the README writes it: the binary under test, and the gateway where
            // it looks by default (the README's 127.0.0.1:8080 is this sandbox's address).
            .env("PATH", &path)
            .env("WAGATE_URL", format!("http://{api}"))
            // A `wagate serve` of the README's listens on ports of its own here too.
            .env("WAGATE_BIND", "127.0.0.1:0")
            .env("WAGATE_SIM_BIND", "127.0.0.1:0")
            .stdin(Stdio::null())
            .output()
            .await
            .expect("bash");
        ran += 1;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() && !transcript {
            failures.push(format!(
                "README line {line}: the block failed: {}{stdout}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let expected = match transcript {
            true => printed,
            false => match tour
                .get(i + 1)
                .filter(|(_, n)| b.followed_by_next && ["json", "text"].contains(&n.lang.as_str()))
            {
                Some((_, next)) => next.text.clone(),
                None => continue,
            },
        };
        // Addresses as the README writes them (the sandbox here runs on ports of its own).
        let stdout = [
            (&api, "127.0.0.1:8080"),
            (&sim, "127.0.0.1:8090"),
            (&receiver_addr, "127.0.0.1:9000"),
        ]
        .iter()
        .fold(stdout.to_string(), |out, (actual, readme)| {
            out.replace(actual.as_str(), readme)
                .replace(&actual.replace(':', "%3A"), &readme.replace(':', "%3A"))
        });
        let (want, got) = (normalise(&expected), normalise(&stdout));
        if want != got {
            failures.push(format!(
                "README line {line}: the README shows\n{}\nbut it printed\n{}",
                want.join("\n"),
                got.join("\n")
            ));
        }
    }
    if let Some(mut r) = receiver {
        let _ = r.kill().await;
    }
    let _ = child.kill().await;
    println!("README tour: {ran} blocks run");
    assert!(ran >= 22, "the tour's blocks were found ({ran})");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
