//! The WAF's false-positive rate on ordinary support-chat text and its
//! detection rate on attack payloads, from the corpora in `tests/waf/`.
//! Both rates are printed; the assertions are the floor they must keep.

use palisade_gateway::waf::{Inspected, Rules, Verdict};
use serde_json::json;

fn corpus(name: &str) -> Vec<String> {
    let path = format!("{}/../../tests/waf/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("corpus file");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The line as a visitor's name: an ordinary, scored JSON field.
fn as_field(rules: &Rules, line: &str) -> Verdict {
    let body = json!({"widget_key": "pk_x", "name": line});
    rules.inspect(&Inspected {
        route: Some("/v1/visitor/sessions"),
        raw_path: "/v1/visitor/sessions",
        json: Some(&body),
        ..Default::default()
    })
}

/// The line as a chat message body (excluded from the rules by default).
fn as_message(rules: &Rules, line: &str) -> Verdict {
    let body = json!({"client_msg_id": "c-1", "body": line});
    rules.inspect(&Inspected {
        route: Some("/v1/visitor/conversations/{id}/messages"),
        raw_path: "/v1/visitor/conversations/c/messages",
        json: Some(&body),
        ..Default::default()
    })
}

/// The line as a query value, as a client would send it (spaces encoded).
fn as_query(rules: &Rules, line: &str) -> Verdict {
    let query = format!("after_seq={}", line.replace(' ', "%20").replace('#', "%23"));
    rules.inspect(&Inspected {
        route: Some("/v1/visitor/conversations/{id}/messages"),
        raw_path: "/v1/visitor/conversations/c/messages",
        raw_query: Some(&query),
        ..Default::default()
    })
}

fn rate(lines: &[String], hit: impl Fn(&str) -> bool) -> (usize, f64) {
    let hits = lines.iter().filter(|l| hit(l)).count();
    (hits, 100.0 * hits as f64 / lines.len() as f64)
}

#[test]
fn benign_chat_text_passes_and_attacks_are_caught() {
    let rules = Rules::default_rules();
    let benign = corpus("benign.txt");
    let attacks = corpus("attacks.txt");
    assert!(
        benign.len() >= 200,
        "the benign corpus has {} lines",
        benign.len()
    );

    let (fp_field, fp_field_pct) = rate(&benign, |l| as_field(&rules, l).over_threshold);
    let (fp_query, fp_query_pct) = rate(&benign, |l| as_query(&rules, l).over_threshold);
    let (fp_msg, fp_msg_pct) = rate(&benign, |l| as_message(&rules, l).over_threshold);
    let (det_field, det_field_pct) = rate(&attacks, |l| as_field(&rules, l).over_threshold);
    let (det_query, det_query_pct) = rate(&attacks, |l| as_query(&rules, l).over_threshold);
    let (det_msg, _) = rate(&attacks, |l| as_message(&rules, l).over_threshold);
    let (n, m) = (benign.len(), attacks.len());
    println!("WAF false positives on {n} benign chat lines:");
    println!("  as a JSON field (e.g. a name): {fp_field}/{n} = {fp_field_pct:.1}%");
    println!("  as a query value:              {fp_query}/{n} = {fp_query_pct:.1}%");
    println!("  as a message body (excluded):  {fp_msg}/{n} = {fp_msg_pct:.1}%");
    println!("WAF detection on {m} attack payloads:");
    println!("  as a JSON field:               {det_field}/{m} = {det_field_pct:.1}%");
    println!("  as a query value:              {det_query}/{m} = {det_query_pct:.1}%");
    println!("  as a message body (excluded):  {det_msg}/{m} (rendered as text, by design)");
    for line in &benign {
        let verdict = as_field(&rules, line);
        if verdict.over_threshold {
            println!(
                "  false positive: rules {:?} on a benign line",
                verdict.rule_ids
            );
        }
    }
    for (n, line) in attacks.iter().enumerate() {
        if !as_field(&rules, line).over_threshold {
            println!("  missed as a field: attack line {}", n + 1);
        }
    }

    assert_eq!(fp_msg, 0, "message bodies are never blocked");
    assert!(fp_field_pct <= 2.0, "false positives {fp_field_pct:.1}%");
    assert!(fp_query_pct <= 2.0, "false positives {fp_query_pct:.1}%");
    assert!(det_field_pct >= 90.0, "detection {det_field_pct:.1}%");
    assert!(det_query_pct >= 90.0, "detection {det_query_pct:.1}%");
}
