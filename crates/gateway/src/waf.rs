//! The web application firewall: rules over the path, query, headers and
//! JSON string values of a request, scored per category. It sits on top of
//! the typed validation, not in place of it: a request it lets through is
//! still parsed strictly.
//!
//! Rules live in a TOML file (the default, `waf/rules.toml`, is embedded);
//! an operator file is re-read when its modification time changes. Logs
//! name rule ids and categories, never the text that matched.

use regex::{Regex, RegexSet, RegexSetBuilder};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// The rules built into the binary.
pub const DEFAULT_RULES: &str = include_str!("../waf/rules.toml");

/// What the WAF does with a request over the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Block,
    /// Log only.
    Detect,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Target {
    Path,
    Query,
    Raw,
    Headers,
    UserAgent,
    Json,
}

const TARGETS: [Target; 6] = [
    Target::Path,
    Target::Query,
    Target::Raw,
    Target::Headers,
    Target::UserAgent,
    Target::Json,
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    threshold: u32,
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    exclusion: Vec<RawExclusion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: u32,
    category: String,
    score: u32,
    targets: Vec<Target>,
    pattern: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExclusion {
    route: String,
    #[serde(default)]
    json_fields: Vec<String>,
    /// Rule ids not applied on this route at all.
    #[serde(default)]
    rules: Vec<u32>,
}

#[derive(Debug)]
struct Rule {
    id: u32,
    category: String,
    score: u32,
}

/// One target's rules as a set (one pass over the input finds every match).
#[derive(Debug)]
struct TargetRules {
    set: RegexSet,
    /// Indexes into `Rules::rules`, in set order.
    members: Vec<usize>,
}

/// A parsed, compiled rule file.
#[derive(Debug)]
pub struct Rules {
    threshold: u32,
    rules: Vec<Rule>,
    by_target: Vec<(Target, TargetRules)>,
    exclusions: Vec<RawExclusion>,
}

/// What the rules found in one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub score: u32,
    /// Matched rule ids, ascending, each once.
    pub rule_ids: Vec<u32>,
    /// Score per category.
    pub categories: BTreeMap<String, u32>,
    pub over_threshold: bool,
}

/// The parts of a request the rules look at.
#[derive(Debug, Default)]
pub struct Inspected<'a> {
    pub route: Option<&'a str>,
    pub raw_path: &'a str,
    pub raw_query: Option<&'a str>,
    pub headers: Vec<(&'a str, &'a str)>,
    pub json: Option<&'a serde_json::Value>,
}

impl Rules {
    /// Parses and compiles a rule file; the error says which rule is bad.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawRules = toml::from_str(text).map_err(|e| format!("not a rule file: {e}"))?;
        if raw.threshold == 0 {
            return Err("threshold must be at least 1".into());
        }
        let mut seen = std::collections::HashSet::new();
        for rule in &raw.rule {
            if !seen.insert(rule.id) {
                return Err(format!("rule {} appears twice", rule.id));
            }
            Regex::new(&rule.pattern).map_err(|e| format!("rule {}: {e}", rule.id))?;
        }
        let mut by_target = Vec::new();
        for target in TARGETS {
            let members: Vec<usize> = (0..raw.rule.len())
                .filter(|&i| raw.rule[i].targets.contains(&target))
                .collect();
            if members.is_empty() {
                continue;
            }
            let set = RegexSetBuilder::new(members.iter().map(|&i| &raw.rule[i].pattern))
                .size_limit(32 << 20)
                .build()
                .map_err(|e| format!("rules for {target:?}: {e}"))?;
            by_target.push((target, TargetRules { set, members }));
        }
        let rules = raw
            .rule
            .into_iter()
            .map(|r| Rule {
                id: r.id,
                category: r.category,
                score: r.score,
            })
            .collect();
        Ok(Self {
            threshold: raw.threshold,
            rules,
            by_target,
            exclusions: raw.exclusion,
        })
    }

    /// The embedded default rules.
    pub fn default_rules() -> Self {
        // The embedded file is checked by a unit test; an empty rule set is
        // the safe fallback should it ever fail to parse.
        Self::parse(DEFAULT_RULES).unwrap_or(Self {
            threshold: u32::MAX,
            rules: Vec::new(),
            by_target: Vec::new(),
            exclusions: Vec::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Scores a request.
    pub fn inspect(&self, req: &Inspected<'_>) -> Verdict {
        let excluded = self
            .exclusions
            .iter()
            .filter(|e| Some(e.route.as_str()) == req.route)
            .collect::<Vec<_>>();
        let mut hits = std::collections::BTreeSet::new();
        let mut scan = |target: Target, text: &str| {
            if text.is_empty() {
                return;
            }
            if let Some((_, rules)) = self.by_target.iter().find(|(t, _)| *t == target) {
                for index in rules.set.matches(text).iter() {
                    hits.insert(rules.members[index]);
                }
            }
        };
        let path = percent_decode(req.raw_path);
        scan(Target::Path, &path);
        let mut raw = req.raw_path.to_owned();
        if let Some(query) = req.raw_query {
            raw.push('?');
            raw.push_str(query);
            for pair in query.split('&') {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                scan(Target::Query, &form_decode(key));
                scan(Target::Query, &form_decode(value));
            }
        }
        scan(Target::Raw, &raw);
        for (name, value) in &req.headers {
            if name.eq_ignore_ascii_case("user-agent") {
                scan(Target::UserAgent, value);
            }
            scan(Target::Headers, value);
        }
        if let Some(json) = req.json {
            let skip: Vec<&str> = excluded
                .iter()
                .flat_map(|e| e.json_fields.iter().map(String::as_str))
                .collect();
            walk_strings(json, None, 0, &mut |field, text| {
                if !field.is_some_and(|f| skip.contains(&f)) {
                    scan(Target::Json, text);
                }
            });
        }

        let skipped_ids: Vec<u32> = excluded.iter().flat_map(|e| e.rules.clone()).collect();
        let mut verdict = Verdict::default();
        for index in hits {
            let rule = &self.rules[index];
            if skipped_ids.contains(&rule.id) {
                continue;
            }
            verdict.score = verdict.score.saturating_add(rule.score);
            verdict.rule_ids.push(rule.id);
            *verdict.categories.entry(rule.category.clone()).or_default() += rule.score;
        }
        verdict.rule_ids.sort_unstable();
        verdict.over_threshold = verdict.score >= self.threshold;
        verdict
    }
}

/// Calls `f` with every string value (and the name of the field holding it).
fn walk_strings<'a>(
    value: &'a serde_json::Value,
    field: Option<&'a str>,
    depth: usize,
    f: &mut impl FnMut(Option<&'a str>, &'a str),
) {
    if depth > 32 {
        return;
    }
    match value {
        serde_json::Value::String(s) => f(field, s),
        serde_json::Value::Array(items) => {
            for item in items {
                walk_strings(item, field, depth + 1, f);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                walk_strings(item, Some(key), depth + 1, f);
            }
        }
        _ => {}
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes once; invalid escapes stay as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes a form-encoded query part (`+` is a space).
fn form_decode(text: &str) -> String {
    percent_decode(&text.replace('+', " "))
}

/// The rules in force, replaceable while the server runs.
#[derive(Debug)]
pub struct Waf {
    pub mode: Mode,
    rules: RwLock<Arc<Rules>>,
    file: Option<PathBuf>,
}

impl Waf {
    /// Loads the operator's rule file, or the embedded rules without one.
    pub fn load(mode: Mode, file: Option<PathBuf>) -> Result<Self, String> {
        let rules = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                Rules::parse(&text)?
            }
            None => Rules::parse(DEFAULT_RULES)?,
        };
        Ok(Self {
            mode,
            rules: RwLock::new(Arc::new(rules)),
            file,
        })
    }

    pub fn rules(&self) -> Arc<Rules> {
        self.rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Polls the rule file's modification time every `every` and swaps in
    /// the new rules when it changes; a file that does not parse is
    /// refused with a warning and the rules in force stay.
    pub fn watch(self: Arc<Self>, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
        let path = self.file.clone()?;
        let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some(tokio::spawn(async move {
            let mut seen: Option<SystemTime> = modified(&path);
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = modified(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                let parsed = std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|text| Rules::parse(&text));
                match parsed {
                    Ok(rules) => {
                        let count = rules.len();
                        *self
                            .rules
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(rules);
                        tracing::info!(rules = count, "WAF rules reloaded");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "WAF rule file refused; the rules in force stay");
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_verdict(rules: &Rules, route: &str, value: serde_json::Value) -> Verdict {
        rules.inspect(&Inspected {
            route: Some(route),
            raw_path: "/x",
            json: Some(&value),
            ..Default::default()
        })
    }

    #[test]
    fn embedded_rules_parse() {
        let rules = Rules::parse(DEFAULT_RULES).expect("embedded rules parse");
        assert!(rules.len() >= 25);
    }

    #[test]
    fn attacks_in_each_target_are_scored_with_rule_ids() {
        let rules = Rules::default_rules();
        let query = rules.inspect(&Inspected {
            raw_path: "/v1/x",
            raw_query: Some("q=1%27%20UNION%20SELECT%20password%20FROM%20users--"),
            ..Default::default()
        });
        assert!(query.over_threshold, "{query:?}");
        assert!(query.rule_ids.contains(&1001));
        assert!(query.categories.contains_key("sqli"));

        let path = rules.inspect(&Inspected {
            raw_path: "/widget/..%2f..%2fetc%2fpasswd",
            ..Default::default()
        });
        assert!(path.over_threshold, "{path:?}");

        let scanner = rules.inspect(&Inspected {
            raw_path: "/",
            headers: vec![("user-agent", "sqlmap/1.7")],
            ..Default::default()
        });
        assert_eq!(scanner.rule_ids, vec![6001]);

        let name = json_verdict(
            &rules,
            "/v1/visitor/sessions",
            serde_json::json!({"name": "<script>alert(1)</script>"}),
        );
        assert!(name.over_threshold);
    }

    #[test]
    fn message_bodies_are_excluded_but_other_fields_are_not() {
        let rules = Rules::default_rules();
        let route = "/v1/visitor/conversations/{id}/messages";
        let body = serde_json::json!({"client_msg_id": "a", "body": "<script>x</script>"});
        assert_eq!(json_verdict(&rules, route, body).score, 0);
        let id = serde_json::json!({"client_msg_id": "<script>x</script>", "body": "hi"});
        assert!(json_verdict(&rules, route, id).over_threshold);
    }

    #[test]
    fn bad_rule_files_are_refused_naming_the_rule() {
        let bad = "threshold = 5\n[[rule]]\nid = 7\ncategory = \"x\"\nscore = 1\ntargets = [\"path\"]\npattern = \"(\"\n";
        let err = Rules::parse(bad).expect_err("refused");
        assert!(err.contains("rule 7"), "{err}");
        assert!(Rules::parse("threshold = 0").is_err());
        assert!(Rules::parse("threshold = 5\nwhat = 1").is_err());
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(form_decode("a+b%2Bc"), "a b+c");
    }
}
