//! `wagate config print`: the configuration a gateway started here would run with, key by key,
//! each with the layer it came from (default < file < environment < flag) and secrets masked.
//!
//! The layers are told apart by loading them one on top of the other and comparing: a value that
//! changes when a layer is added came from that layer.

use std::path::Path;

use serde_json::Value;

use crate::config::{Config, ConfigErrors, Overrides};

/// Keys whose values are secrets: shown as set or not, never their value.
const SECRET_WORDS: [&str; 4] = ["secret", "token", "password", "api_key"];

/// The effective configuration as TOML, every value followed by its source.
pub fn explain(
    config_path: Option<&Path>,
    env: &std::collections::BTreeMap<String, String>,
    overrides: &Overrides,
) -> Result<String, ConfigErrors> {
    let (all, _) = Config::load(config_path, env, overrides)?;
    // The file as the full load found it (named, or the data directory's), for the file layer.
    let path = config_path
        .map(Path::to_path_buf)
        .or_else(|| env.get("WAGATE_CONFIG").filter(|v| !v.is_empty()).map(Into::into))
        .or_else(|| Some(all.data_dir.join("wagate.toml")).filter(|p| p.is_file()));
    let none = Default::default();
    let value = |c: &Config| serde_json::to_value(c).unwrap_or_default();
    let all = value(&all);
    let with_env = value(&Config::load(path.as_deref(), env, &Overrides::default())?.0);
    // A file that needs the environment to be valid (a token from a variable, say) is judged
    // with it: its values then show as the environment's.
    let file = Config::load(path.as_deref(), &none, &Overrides::default())
        .map(|(c, _)| value(&c))
        .unwrap_or_else(|_| with_env.clone());
    let defaults = Config::load(None, &none, &Overrides::default())
        .map(|(c, _)| value(&c))
        .unwrap_or_else(|_| file.clone());
    let layers = [
        (&defaults, "default"),
        (&file, "file"),
        (&with_env, "environment"),
        (&all, "flag"),
    ];
    let mut out = String::new();
    if let Some(p) = &path {
        out.push_str(&format!("# file: {}\n", p.display()));
    }
    section(&mut out, &[], &all, &layers);
    Ok(out)
}

/// Prints a table's scalars, then its tables and arrays of tables.
fn section(out: &mut String, at: &[String], table: &Value, layers: &[(&Value, &str)]) {
    let Some(map) = table.as_object() else { return };
    for (key, v) in map.iter().filter(|(_, v)| !is_table(v)) {
        let path: Vec<String> = at.iter().cloned().chain([key.clone()]).collect();
        let source = layers
            .iter()
            .rev()
            .zip(layers.iter().rev().skip(1))
            .find(|((upper, _), (lower, _))| lookup(upper, &path) != lookup(lower, &path))
            .map_or("default", |((_, name), _)| *name);
        let shown = match v {
            Value::Null => {
                out.push_str(&format!("# {key} is not set\n"));
                continue;
            }
            // Extra headers of a hook often carry credentials, whatever they are called.
            Value::String(s) if (is_secret(key) || at.last().is_some_and(|k| k == "headers")) && !s.is_empty() => {
                "\"…\" (set)".to_string()
            }
            other => other.to_string(),
        };
        out.push_str(&format!("{key} = {shown}  # {source}\n"));
    }
    for (key, v) in map.iter().filter(|(_, v)| is_table(v)) {
        let path: Vec<String> = at.iter().cloned().chain([key.clone()]).collect();
        // TOML names a table inside an array of tables without the index: [hooks.hook.headers].
        let name: Vec<&str> = path
            .iter()
            .map(String::as_str)
            .filter(|k| k.parse::<usize>().is_err())
            .collect();
        match v {
            Value::Object(_) => {
                out.push_str(&format!("\n[{}]\n", name.join(".")));
                section(out, &path, v, layers);
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&format!("\n[[{}]]\n", name.join(".")));
                    let item_path: Vec<String> = path.iter().cloned().chain([i.to_string()]).collect();
                    section(out, &item_path, item, layers);
                }
            }
            _ => {}
        }
    }
}

fn is_table(v: &Value) -> bool {
    v.is_object()
        || v.as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_object))
}

fn is_secret(key: &str) -> bool {
    SECRET_WORDS.iter().any(|w| key.contains(w)) && !key.ends_with("_file") && !key.ends_with("_claim")
}

/// The value at a path of keys and array indexes.
fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| match v {
        Value::Array(items) => k.parse::<usize>().ok().and_then(|i| items.get(i)),
        other => other.get(k),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_names_its_layer_and_secrets_are_masked() {
        let dir = wagate_store::testing::TestDir::new("explain");
        let file = dir.join("wagate.toml");
        std::fs::write(
            &file,
            "api_version = \"v22.0\"\n[server]\nmax_headers = 50\n[[hooks.hook]]\nname = \"crm\"\nurl = \"https://crm.example.com/h\"\nheaders = { Authorization = \"Bearer crm-credential\" }\n",
        )
        .expect("file");
        let env = [
            ("WAGATE_BIND", "127.0.0.1:9999"),
            ("WAGATE_BOOTSTRAP_API_KEY", "wg_super_secret_value_123"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let flags = Overrides {
            database_url: Some("sqlite://flag.db".into()),
            ..Default::default()
        };
        let text = explain(Some(&file), &env, &flags).expect("valid");
        for line in [
            "bind = \"127.0.0.1:9999\"  # environment",
            "database_url = \"sqlite://flag.db\"  # flag",
            "api_version = \"v22.0\"  # file",
            "max_headers = 50  # file",
            "max_connections = 10000  # default",
            "bootstrap_api_key = \"…\" (set)  # environment",
            "[server]",
            "[[hooks.hook]]",
            "[hooks.hook.headers]",
            "Authorization = \"…\" (set)  # file",
        ] {
            assert!(text.lines().any(|l| l == line), "`{line}` in:\n{text}");
        }
        assert!(
            !text.contains("wg_super_secret") && !text.contains("crm-credential"),
            "{text}"
        );
    }
}
