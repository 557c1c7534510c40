//! A cheap bound on how deeply a YAML (or JSON) document nests, checked before it is parsed.
//! The YAML scanner keeps a pending key per open flow collection and looks them over again at
//! every token, so its time grows with the square of the nesting: a 375 kB body of
//! `a: {b: {b: ...` took 29 s of CPU to be refused. spate's configs nest about 8 levels deep at
//! most (`templates.NAME.fields[i].gen.int.min`).

use crate::error::ConfigError;

/// Most values a request body may hold (`spate serve`). A parsed value costs 300 bytes to 1 KiB
/// while it is checked (the JSON tree, the YAML tree it becomes, the merged config): 1 MiB of
/// `0,0,0,...` (half a million values) took 166 MiB, 95,000 keys 93 MiB. A 1,024-field
/// template written one setting per line holds under 10,000.
pub const MAX_REQUEST_VALUES: usize = 50_000;

/// Refuses a document that may hold more than `max` values, counted before parsing as its
/// commas and lines (every value past the first of a line takes one or the other), in time
/// linear in its length. Quoted text is not told apart: a count too high, never too low.
pub fn check_values(text: &str, max: usize) -> Result<(), ConfigError> {
    let n = text.bytes().filter(|&b| b == b',' || b == b'\n').count();
    if n <= max {
        return Ok(());
    }
    Err(ConfigError::new(
        "(document)",
        format!("the document holds about {n} values (commas and lines); at most {max} are read"),
        "send a smaller config: a spate config holds a few thousand values (templates up to 1,024 fields)",
    ))
}

/// Deepest nesting accepted.
pub const MAX_NESTING: usize = 32;

/// Refuses a document nested deeper than [`MAX_NESTING`], in time linear in its length.
pub fn check_nesting(text: &str) -> Result<(), ConfigError> {
    if nesting(text, MAX_NESTING) <= MAX_NESTING {
        return Ok(());
    }
    Err(ConfigError::new(
        "(document)",
        format!("the document is nested more than {MAX_NESTING} levels deep"),
        "flatten it: a spate config nests a few levels at most (e.g. templates.NAME.fields[0].gen)",
    ))
}

/// Nesting depth of `text`: block levels (distinct indentations, and `- ` entries) plus open
/// flow collections (`{`, `[`), outside quoted scalars, block scalars and comments. It may
/// count a level too many in odd text, never one too few for structure; it stops past `limit`.
fn nesting(text: &str, limit: usize) -> usize {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<u8> = None;
    // Indentation of the line that opened a block scalar (`key: |`): deeper lines are text.
    let mut block_scalar: Option<usize> = None;
    let mut max = 0;
    for line in text.lines() {
        let b = line.as_bytes();
        let indent = b.iter().take_while(|&&c| c == b' ').count();
        let rest = &b[indent..];
        if quote.is_none() {
            if let Some(open) = block_scalar {
                if rest.is_empty() || indent > open {
                    continue;
                }
                block_scalar = None;
            }
            if rest.is_empty() || rest[0] == b'#' {
                continue;
            }
        }
        let mut depth = indents.len();
        if quote.is_none() && flow == 0 {
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
            depth = indents.len();
        }
        let mut prev = b' ';
        let mut escaped = false;
        let mut content_end = rest.len();
        let mut i = 0;
        while i < rest.len() {
            let c = rest[i];
            match quote {
                Some(b'"') if escaped => escaped = false,
                Some(b'"') if c == b'\\' => escaped = true,
                // `''` is a quote inside a single-quoted scalar.
                Some(b'\'') if c == b'\'' && rest.get(i + 1) == Some(&b'\'') => i += 1,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    b'"' | b'\''
                        if matches!(
                            prev,
                            b' ' | b'\t' | b':' | b'[' | b'{' | b',' | b'-' | b'?'
                        ) =>
                    {
                        quote = Some(c);
                    }
                    b'#' if matches!(prev, b' ' | b'\t') => {
                        content_end = i;
                        break;
                    }
                    b'{' | b'[' => flow += 1,
                    b'}' | b']' => flow = flow.saturating_sub(1),
                    b'-' if flow == 0
                        && prev == b' '
                        && !matches!(rest.get(i + 1), Some(&n) if n != b' ') =>
                    {
                        depth += 1;
                    }
                    _ => {}
                },
            }
            prev = c;
            i += 1;
            max = max.max(depth + flow);
            if max > limit {
                return max;
            }
        }
        max = max.max(depth + flow);
        if quote.is_none() && flow == 0 && opens_block_scalar(&rest[..content_end]) {
            block_scalar = Some(indent);
        }
    }
    max
}

/// Whether a line ends with a block scalar header (`|`, `>-`, `|2+`) after a key or an entry.
fn opens_block_scalar(content: &[u8]) -> bool {
    let t = content.trim_ascii_end();
    let start = t.iter().rposition(|&c| c == b' ').map_or(0, |i| i + 1);
    let (before, token) = t.split_at(start);
    let header = matches!(token.first(), Some(b'|' | b'>'))
        && token[1..].iter().all(|c| matches!(c, b'+' | b'-' | b'0'..=b'9'));
    let before = before.trim_ascii_end();
    header && (before.is_empty() || before.ends_with(b":") || before.ends_with(b"-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_configs_are_shallow() {
        let yaml = "rate: 10\nsources: {web: 1}\ntemplates:\n  checkout:\n    fields:\n      - name: amount\n        gen: {int: {min: 1, max: 9}}\n      - name: note\n        gen: |\n          {{{{ [[[[ not structure\n";
        let d = nesting(yaml, 100);
        assert!((5..=10).contains(&d), "{d}");
        assert_eq!(
            nesting("a: '{{{{[[[['\nb: \"x\\\"{{{{\"\nc: it's {\n", 100),
            2,
            "quotes hold no structure"
        );
        assert_eq!(nesting("# {{{{{{\na: 1 # [[[[\n", 100), 1, "comments hold no structure");
        // The line's own block level plus four flow levels: one more than JSON counts.
        assert_eq!(nesting("{\"a\": {\"b\": [1, {\"c\": 2}]}}", 100), 5);
    }

    #[test]
    fn deep_documents_are_refused() {
        let flow = format!("a: {}1{}", "{b: ".repeat(75_000), "}".repeat(75_000));
        let t = std::time::Instant::now();
        let e = check_nesting(&flow).unwrap_err();
        assert!(t.elapsed() < std::time::Duration::from_millis(100), "{:?}", t.elapsed());
        assert_eq!(e.key, "(document)");
        let block: String = (0..40).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect();
        assert!(check_nesting(&block).is_err());
        let seq = format!("{}x\n", "- ".repeat(40));
        assert!(check_nesting(&seq).is_err());
        let just = format!("{}1{}", "[".repeat(MAX_NESTING - 1), "]".repeat(MAX_NESTING - 1));
        assert!(check_nesting(&just).is_ok());
        let over = format!("{}1{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert!(check_nesting(&over).is_err());
    }
}
