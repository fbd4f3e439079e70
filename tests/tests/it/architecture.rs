//! The layering, drawn from the imports of `shared/src` (production code; test modules left out):
//! no circle between files; `domain` imports nothing of the crate but itself; the use cases
//! (`app`, `rotation`, `validation`) import nothing of the edge; adapters (`store`, `events`,
//! `queue`, `azure`, `issuer`) import neither each other, the use cases nor the edge. A new import that breaks the
//! picture in the README fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A file of the crate and the module path it defines (`app/error.rs` → `["app", "error"]`).
#[derive(Debug)]
struct File {
    module: Vec<String>,
    /// Child modules declared in the file (`mod x;`).
    children: BTreeSet<String>,
    code: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Comments, strings and the `#[cfg(test)] mod tests` block removed.
fn production_code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
                out.push_str("\"\"");
            }
            '\'' => {
                // A char literal ('x', '\n') or a lifetime ('a): keep lifetimes, drop chars.
                let rest: String = chars.clone().take(3).collect();
                let is_char = rest.starts_with('\\') || rest.chars().nth(1) == Some('\'');
                if is_char {
                    let mut escaped = false;
                    for c in chars.by_ref() {
                        match c {
                            '\\' if !escaped => escaped = true,
                            '\'' if !escaped => break,
                            _ => escaped = false,
                        }
                    }
                    out.push_str("' '");
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn load() -> BTreeMap<PathBuf, File> {
    let root = src();
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    paths
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&root).unwrap().to_path_buf();
            let mut module: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let code = production_code(&std::fs::read_to_string(&path).unwrap());
            let children = code
                .lines()
                .filter_map(|l| {
                    let l = l.trim();
                    let l = l.strip_prefix("pub ").unwrap_or(l);
                    let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
                    let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
                    Some(name.trim().to_owned())
                })
                .collect();
            (
                rel,
                File {
                    module,
                    children,
                    code,
                },
            )
        })
        .collect()
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.len() - 1];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// Every path the file names: `use` trees expanded, and paths written inline.
fn paths_named(file: &File) -> Vec<Vec<String>> {
    let code = &file.code;
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let after = &rest[i + 4..];
        let Some(end) = after.find(';') else { break };
        if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
            found.extend(expand(&after[..end]));
        }
        rest = &after[end..];
    }
    // Inline paths: crate::…, super::…, self::…, and child::… in a file that declares the child.
    let starts: Vec<String> = ["crate", "super", "self"]
        .iter()
        .map(|s| s.to_string())
        .chain(file.children.iter().cloned())
        .collect();
    let bytes = code.as_bytes();
    for start in &starts {
        let needle = format!("{start}::");
        let mut from = 0;
        while let Some(i) = code[from..].find(&needle) {
            let at = from + i;
            from = at + needle.len();
            if at > 0
                && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':')
            {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            found.push(path);
        }
    }
    found
        .into_iter()
        .map(|p| {
            p.split("::")
                .map(|s| s.split(" as ").next().unwrap_or(s).trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .collect()
}

/// The file a path lands in: the deepest module of the crate it names.
fn resolve(file: &File, path: &[String], modules: &BTreeMap<Vec<String>, PathBuf>) -> Option<PathBuf> {
    let mut at: Vec<String> = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "super" => {
            let mut m = file.module.clone();
            m.pop();
            m
        }
        "self" => file.module.clone(),
        child if file.children.contains(child) => {
            let mut m = file.module.clone();
            m.push(child.to_owned());
            m
        }
        // Another crate.
        _ => return None,
    };
    for segment in &path[1..] {
        if segment == "super" {
            at.pop();
            continue;
        }
        let mut next = at.clone();
        next.push(segment.clone());
        if modules.contains_key(&next) {
            at = next;
        } else {
            break;
        }
    }
    modules.get(&at).cloned()
}

fn graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let files = load();
    let modules: BTreeMap<Vec<String>, PathBuf> =
        files.iter().map(|(p, f)| (f.module.clone(), p.clone())).collect();
    files
        .iter()
        .map(|(p, f)| {
            let targets = paths_named(f)
                .iter()
                .filter_map(|path| resolve(f, path, &modules))
                .filter(|t| t != p)
                .collect();
            (p.clone(), targets)
        })
        .collect()
}

fn top(p: &Path) -> String {
    p.components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

#[test]
fn the_import_graph_is_read_correctly() {
    let g = graph();
    let edges = |from: &str| g[Path::new(from)].clone();
    // Known edges, so that a parser that reads nothing cannot pass the rules below.
    assert!(edges("app/write.rs").contains(Path::new("app/operations.rs")));
    assert!(
        edges("app/mod.rs").contains(Path::new("app/error.rs")),
        "re-exports count"
    );
    assert!(
        edges("edge/function.rs").is_empty(),
        "{:?}",
        edges("edge/function.rs")
    );
    assert!(edges("edge/http.rs").contains(Path::new("edge/request.rs")));
    assert!(edges("rotation.rs").contains(Path::new("store/mod.rs")));
    assert!(edges("config.rs").contains(Path::new("validation.rs")));
    assert!(g.len() > 30, "{} files", g.len());
}

#[test]
fn no_circle_between_files() {
    let g = graph();
    // Depth-first search with colours; a grey node met again closes a circle.
    fn visit<'a>(
        n: &'a Path,
        g: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<&'a Path, u8>,
        stack: &mut Vec<&'a Path>,
        circles: &mut Vec<String>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        for m in &g[n] {
            match state.get(m.as_path()) {
                Some(1) => {
                    let from = stack.iter().position(|s| *s == m.as_path()).unwrap();
                    let names: Vec<String> = stack[from..]
                        .iter()
                        .chain(std::iter::once(&m.as_path()))
                        .map(|p| p.display().to_string())
                        .collect();
                    circles.push(names.join(" → "));
                }
                Some(_) => {}
                None => visit(m, g, state, stack, circles),
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    let mut state = BTreeMap::new();
    let mut circles = Vec::new();
    for n in g.keys() {
        if !state.contains_key(n.as_path()) {
            visit(n, &g, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    assert!(
        circles.is_empty(),
        "circles between files:\n{}",
        circles.join("\n")
    );
}

#[test]
fn each_layer_imports_only_what_the_picture_allows() {
    let g = graph();
    let allowed: &[(&str, &[&str])] = &[
        ("domain", &["domain"]),
        ("retry", &[]),
        // The metrics' names and helpers (beside, as telemetry): they speak of steps and
        // credential types, nothing else.
        ("metrics", &["domain"]),
        ("telemetry", &["metrics"]),
        ("issuer", &["domain", "issuer"]),
        ("store", &["domain", "store"]),
        ("events", &["events"]),
        ("queue", &["queue"]),
        ("azure", &["domain"]),
        (
            "validation",
            &["domain", "azure", "issuer", "retry", "telemetry", "metrics"],
        ),
        (
            "app",
            &[
                "app",
                "domain",
                "store",
                "events",
                "queue",
                "issuer",
                "validation",
                "retry",
                "telemetry",
                "metrics",
            ],
        ),
        (
            "rotation",
            &[
                "app",
                "domain",
                "store",
                "events",
                "azure",
                "retry",
                "telemetry",
                "metrics",
            ],
        ),
    ];
    let mut broken = Vec::new();
    for (from, targets) in &g {
        let layer = top(from);
        let Some((_, ok)) = allowed.iter().find(|(l, _)| *l == layer) else {
            continue;
        };
        for t in targets {
            let target = top(t);
            if target != layer && !ok.contains(&target.as_str()) {
                broken.push(format!("{} imports {}", from.display(), t.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports across the layers:\n{}",
        broken.join("\n")
    );
}
