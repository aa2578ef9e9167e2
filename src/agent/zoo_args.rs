//! RL Zoo's `<env>/args.yml` (the training command's arguments), read as data.
//!
//! rl_zoo3 writes it with PyYAML's `yaml.dump` of an `OrderedDict`, so it starts with the tag
//! `!!python/object/apply:collections.OrderedDict` over a list of `[key, value]` pairs. PyYAML's
//! unsafe loader would call whatever a `!!python/...` tag names; this reader constructs
//! nothing: it reads the block YAML PyYAML writes (sequences, mappings, scalars, empty and
//! simple flow collections) into plain values, and accepts only the tags of an allow-list
//! (the `OrderedDict` form and `!!python/tuple`). Any other tag is an error that names it.

use std::path::Path;

/// Largest args.yml read.
pub const MAX_BYTES: u64 = 1 << 20;
/// Deepest nesting read.
const MAX_DEPTH: usize = 32;

/// A YAML value as read (tags applied).
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Yaml>),
    /// Keys in file order.
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why an args.yml cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {detail}")]
pub struct YamlError {
    pub file: String,
    pub line: usize,
    pub detail: String,
}

/// The tags a file may carry (nothing else is ever constructed).
const ALLOWED_TAGS: &[&str] = &["!!python/object/apply:collections.OrderedDict", "!!python/tuple"];

/// What the sweep takes from args.yml.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZooArgs {
    pub seed: Option<i64>,
    pub env: Option<String>,
    pub algo: Option<String>,
}

/// Reads `args.yml`.
pub fn read_args(path: &Path) -> Result<ZooArgs, YamlError> {
    let file = path.display().to_string();
    let err = |detail: String| YamlError { file: file.clone(), line: 0, detail };
    let len = std::fs::metadata(path).map_err(|e| err(format!("cannot read it: {e}")))?.len();
    if len > MAX_BYTES {
        return Err(err(format!("{len} bytes, over the limit of {MAX_BYTES}")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it as text: {e}")))?;
    let doc = parse(&text, &file)?;
    let str_of = |k: &str| match doc.get(k) {
        Some(Yaml::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let seed = match doc.get("seed") {
        Some(Yaml::Int(s)) => Some(*s),
        _ => None,
    };
    Ok(ZooArgs { seed, env: str_of("env"), algo: str_of("algo") })
}

/// One content line: its indentation and text (comments and blank lines are dropped).
#[derive(Debug, Clone)]
struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
    file: &'a str,
}

/// Parses a document (the block subset PyYAML's `dump` writes).
pub fn parse(text: &str, file: &str) -> Result<Yaml, YamlError> {
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---")
        .map(|(i, l)| Line { no: i + 1, indent: l.len() - l.trim_start().len(), text: l.trim_end() })
        .collect();
    let mut p = Parser { lines, pos: 0, file };
    if p.lines.is_empty() {
        return Ok(Yaml::Null);
    }
    // A tag alone on the first line applies to the node below it.
    let first = p.lines[0].text.trim();
    let tag = if first.starts_with('!') && !first.contains(' ') {
        p.check_tag(first, p.lines[0].no)?;
        p.pos = 1;
        Some(first.to_string())
    } else {
        None
    };
    let indent = p.lines.get(p.pos).map_or(0, |l| l.indent);
    let node = p.block(indent, 0)?;
    let node = p.apply(tag.as_deref(), node, 1)?;
    if let Some(l) = p.lines.get(p.pos) {
        return Err(p.err(l.no, "unexpected text after the document"));
    }
    Ok(node)
}

impl Parser<'_> {
    fn err(&self, line: usize, detail: impl Into<String>) -> YamlError {
        YamlError { file: self.file.to_string(), line, detail: detail.into() }
    }

    fn check_tag(&self, tag: &str, line: usize) -> Result<(), YamlError> {
        if ALLOWED_TAGS.contains(&tag) {
            return Ok(());
        }
        Err(self.err(
            line,
            format!(
                "refusing the tag {tag}: args.yml is read as data and only {} are accepted (nothing is ever \
                 constructed)",
                ALLOWED_TAGS.join(" and ")
            ),
        ))
    }

    /// Applies an allowed tag: an OrderedDict from `[key, value]` pairs becomes a mapping.
    fn apply(&self, tag: Option<&str>, node: Yaml, line: usize) -> Result<Yaml, YamlError> {
        match tag {
            Some("!!python/object/apply:collections.OrderedDict") => {
                // apply:OrderedDict's argument list: one list of pairs.
                let pairs = match node {
                    Yaml::List(mut args) if args.len() == 1 => match args.remove(0) {
                        Yaml::List(p) => p,
                        _ => return Err(self.err(line, "an OrderedDict whose argument is not a list of pairs")),
                    },
                    _ => return Err(self.err(line, "an OrderedDict without its list of pairs")),
                };
                let map = pairs
                    .into_iter()
                    .map(|pair| match pair {
                        Yaml::List(kv) if kv.len() == 2 => match (&kv[0], &kv[1]) {
                            (Yaml::Str(k), v) => Ok((k.clone(), v.clone())),
                            _ => Err(self.err(line, "an OrderedDict key that is not text")),
                        },
                        _ => Err(self.err(line, "an OrderedDict entry that is not a [key, value] pair")),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Yaml::Map(map))
            }
            _ => Ok(node),
        }
    }

    /// The node whose lines are indented by `indent`.
    fn block(&mut self, indent: usize, depth: usize) -> Result<Yaml, YamlError> {
        let Some(line) = self.lines.get(self.pos).cloned() else { return Ok(Yaml::Null) };
        if depth > MAX_DEPTH {
            return Err(self.err(line.no, format!("nested deeper than {MAX_DEPTH} levels (limit)")));
        }
        if line.text.trim_start().starts_with("- ") || line.text.trim() == "-" {
            self.sequence(indent, depth)
        } else {
            self.mapping(indent, depth)
        }
    }

    fn sequence(&mut self, indent: usize, depth: usize) -> Result<Yaml, YamlError> {
        let mut items = Vec::new();
        while let Some(line) = self.lines.get(self.pos).cloned() {
            let t = line.text.trim_start();
            if line.indent != indent || !(t.starts_with("- ") || t == "-") {
                if line.indent > indent {
                    return Err(self.err(line.no, "unexpected indentation"));
                }
                break;
            }
            let rest = t.strip_prefix('-').unwrap_or("").trim_start();
            let item_indent = line.indent + (t.len() - rest.len());
            items.push(self.item(rest, item_indent, line.no, depth)?);
        }
        Ok(Yaml::List(items))
    }

    /// A sequence item starting with `rest` on its line (not yet consumed), its nested lines
    /// indented by `indent`.
    fn item(&mut self, rest: &str, indent: usize, no: usize, depth: usize) -> Result<Yaml, YamlError> {
        if rest.is_empty() {
            self.pos += 1;
            return match self.lines.get(self.pos).map(|l| l.indent) {
                Some(ci) if ci >= indent => self.block(ci, depth + 1),
                _ => Ok(Yaml::Null),
            };
        }
        if rest.starts_with("- ") || rest == "-" || split_key(rest).is_some() {
            // A sequence ("- - x") or a mapping ("- key: value") starting on the item's line:
            // the line now begins there.
            let line = &mut self.lines[self.pos];
            line.text = &line.text[line.text.len() - rest.len()..];
            line.indent = indent;
            return self.block(indent, depth + 1);
        }
        self.pos += 1;
        self.scalar_or_flow(rest, no)
    }

    fn mapping(&mut self, indent: usize, depth: usize) -> Result<Yaml, YamlError> {
        let mut map = Vec::new();
        while let Some(line) = self.lines.get(self.pos).cloned() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return Err(self.err(line.no, "unexpected indentation"));
            }
            let t = line.text.trim_start();
            if t.starts_with("- ") {
                break;
            }
            let Some((key, value)) = split_key(t) else {
                return Err(self.err(line.no, format!("expected `key: value`, found `{t}`")));
            };
            let key = unquote(key);
            let value = if value.is_empty() {
                self.pos += 1;
                match self.lines.get(self.pos) {
                    // (PyYAML writes a mapping's sequence at the key's own indentation)
                    Some(next)
                        if next.indent > indent
                            || (next.indent == indent && next.text.trim_start().starts_with("- ")) =>
                    {
                        let ci = next.indent;
                        self.block(ci, depth + 1)?
                    }
                    _ => Yaml::Null,
                }
            } else if value.starts_with('!') {
                let (tag, rest) = value.split_once(' ').unwrap_or((value, ""));
                self.check_tag(tag, line.no)?;
                self.pos += 1;
                let node = match (rest.is_empty(), self.lines.get(self.pos).map(|l| l.indent)) {
                    (true, Some(ci)) if ci >= indent => self.block(ci, depth + 1)?,
                    (true, _) => Yaml::Null,
                    (false, _) => self.scalar_or_flow(rest, line.no)?,
                };
                self.apply(Some(tag), node, line.no)?
            } else {
                self.pos += 1;
                self.scalar_or_flow(value, line.no)?
            };
            map.push((key, value));
        }
        Ok(Yaml::Map(map))
    }

    fn scalar_or_flow(&self, text: &str, no: usize) -> Result<Yaml, YamlError> {
        let t = text.trim();
        if t.starts_with('!') {
            let tag = t.split_whitespace().next().unwrap_or(t);
            self.check_tag(tag, no)?;
            return Ok(Yaml::Null);
        }
        if t == "[]" {
            return Ok(Yaml::List(Vec::new()));
        }
        if t == "{}" {
            return Ok(Yaml::Map(Vec::new()));
        }
        if let Some(inner) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            return Ok(Yaml::List(inner.split(',').map(|s| scalar(s.trim())).collect()));
        }
        Ok(scalar(t))
    }
}

/// `key: value` (or `key:`), outside quotes.
fn split_key(t: &str) -> Option<(&str, &str)> {
    if t.starts_with('\'') || t.starts_with('"') {
        let q = t.as_bytes()[0] as char;
        let end = t[1..].find(q)? + 1;
        let rest = t[end + 1..].strip_prefix(':')?;
        return Some((&t[..=end], rest.trim_start()));
    }
    let i = t.find(": ").or_else(|| t.strip_suffix(':').map(|s| s.len()))?;
    Some((&t[..i], t[i + 1..].trim_start()))
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && ((s.starts_with('\'') && s.ends_with('\'')) || (s.starts_with('"') && s.ends_with('"'))) {
        s[1..s.len() - 1].replace("''", "'")
    } else {
        s.to_string()
    }
}

/// A plain or quoted scalar, as YAML 1.1's core types (PyYAML's resolver).
fn scalar(t: &str) -> Yaml {
    if t.starts_with('\'') || t.starts_with('"') {
        return Yaml::Str(unquote(t));
    }
    match t {
        "null" | "~" | "Null" | "NULL" | "" => Yaml::Null,
        "true" | "True" | "TRUE" => Yaml::Bool(true),
        "false" | "False" | "FALSE" => Yaml::Bool(false),
        _ => {
            if let Ok(i) = t.parse::<i64>() {
                Yaml::Int(i)
            } else if let Ok(f) = t.parse::<f64>() {
                Yaml::Float(f)
            } else {
                Yaml::Str(t.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARGS: &str = "!!python/object/apply:collections.OrderedDict
- - - algo
    - dqn
  - - env
    - CartPole-v1
  - - gym_packages
    - []
  - - hyperparams
    - exploration_fraction: 0.5
      policy_kwargs:
        net_arch:
        - 32
        - 32
  - - seed
    - 3
  - - tensorboard_log
    - ''
  - - trained_agent
    - null
";

    #[test]
    fn rl_zoo_args_are_read_as_data() {
        let doc = parse(ARGS, "args.yml").unwrap();
        assert_eq!(doc.get("seed"), Some(&Yaml::Int(3)));
        assert_eq!(doc.get("algo"), Some(&Yaml::Str("dqn".into())));
        assert_eq!(doc.get("tensorboard_log"), Some(&Yaml::Str(String::new())));
        assert_eq!(doc.get("trained_agent"), Some(&Yaml::Null));
        let hp = doc.get("hyperparams").unwrap();
        assert_eq!(hp.get("exploration_fraction"), Some(&Yaml::Float(0.5)));
        assert_eq!(
            hp.get("policy_kwargs").and_then(|p| p.get("net_arch")),
            Some(&Yaml::List(vec![Yaml::Int(32), Yaml::Int(32)]))
        );
    }

    #[test]
    fn real_rl_zoo_files_give_their_seed() {
        let logs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zoo/logs");
        for (run, seed, algo) in
            [("dqn/CartPole-v1_1", 1, "dqn"), ("dqn/CartPole-v1_3", 3, "dqn"), ("ppo/CartPole-v1_1", 4, "ppo")]
        {
            let a = read_args(&logs.join(run).join("CartPole-v1/args.yml")).unwrap();
            assert_eq!((a.seed, a.env.as_deref(), a.algo.as_deref()), (Some(seed), Some("CartPole-v1"), Some(algo)));
        }
    }

    #[test]
    fn other_tags_are_refused_not_constructed() {
        let evil = ARGS.replace("- 3\n", "- !!python/object/apply:os.system ['touch /tmp/pwned']\n");
        let e = parse(&evil, "args.yml").unwrap_err();
        assert!(e.detail.contains("refusing the tag !!python/object/apply:os.system"), "{e}");
        assert_eq!(e.line, 15);
        let e = parse("!!python/object:argparse.Namespace\nseed: 1\n", "args.yml").unwrap_err();
        assert!(e.detail.contains("refusing the tag !!python/object:argparse.Namespace"), "{e}");
        assert!(parse("a:\n    - 1\n  - 2\n", "x").is_err(), "bad indentation is an error");
    }
}
