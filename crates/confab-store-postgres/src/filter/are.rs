//! `$regex` patterns, written in the `regex` crate's syntax with LeanCloud/MongoDB flags (as the
//! engine's `compile_regex` reads them), rewritten as PostgreSQL's Advanced Regular Expressions
//! for the `~` operator. The embedded store runs the engine's own regex; this store lets
//! PostgreSQL match, so that a query's filter stays in SQL (and its paging and count with it).
//!
//! What is rewritten, so that the two read a pattern alike:
//! - the flags become the ARE's leading embedded options: `i` is `i`, `x` is `x`; `m` and `s`
//!   choose how newlines are treated (Rust's default, `.` not matching a newline and `^`/`$` only
//!   at the ends, is ARE's `p`; `m` alone `n`; `s` alone `s`; both `w`). A pattern's own leading
//!   flag group (`(?i)abc`) joins them;
//! - Java quoting `\Q…\E` (which the engine turns into escaped literals) likewise;
//! - word boundaries `\b`, `\B`, `\<`, `\>`, `\b{start}`, `\b{end}` are ARE's `\y`, `\Y`, `\m`,
//!   `\M`; the end of the text `\z` is `\Z`; a code point `\x{…}` is `\U` and eight hex digits;
//! - named groups `(?P<n>…)`, `(?<n>…)` are plain groups (only whether a pattern matches counts).
//!
//! Where they still differ:
//! - PostgreSQL refuses Unicode classes (`\p{…}`), flags inside the pattern other than at its
//!   start (`(?i:…)`, `a(?i)b`), class set operations (`[a-z&&[^x]]`), nested classes and the
//!   half word boundaries: such a query answers `Invalid`, where the embedded store runs it;
//! - without `s`, a negated class (`[^a]`) does not match a newline here; in Rust it does;
//! - `\d`, `\w`, `\s` and case folding follow the database's locale, not Unicode's tables;
//! - with `x`, whitespace inside a class is kept here and ignored by Rust.

use confab_engine::{Error, Result};

/// The characters the engine escapes in `\Q…\E` text (the `regex` crate's `escape`); each is
/// a literal in an ARE behind a backslash too.
const META: &str = "\\.+*?()|[]{}^$#&-~";

/// The ARE for a pattern and its flags (`imsx`).
pub(super) fn translate(pattern: &str, flags: &str) -> Result<String> {
    let (leading, body) = leading_flags(pattern);
    let (mut case, mut multi, mut dot_all, mut verbose) = (false, false, false, false);
    for f in flags.chars().chain(leading.chars()) {
        match f {
            'i' => case = true,
            'm' => multi = true,
            's' => dot_all = true,
            'x' => verbose = true,
            // Unicode mode: on by default in Rust
            'u' => {}
            other => return Err(Error::invalid(format!("bad $regex: unknown regex option '{other}'"))),
        }
    }
    let newlines = match (multi, dot_all) {
        (false, false) => 'p',
        (true, false) => 'n',
        (false, true) => 's',
        (true, true) => 'w',
    };
    let mut out = format!("(?{newlines}{}{})", if case { "i" } else { "" }, if verbose { "x" } else { "" });
    rewrite(body, &mut out);
    Ok(out)
}

/// A leading group of flags alone (`(?im)`), and the pattern after it.
fn leading_flags(pattern: &str) -> (&str, &str) {
    let Some(rest) = pattern.strip_prefix("(?") else { return ("", pattern) };
    match rest.find(')') {
        Some(end) if end > 0 && rest[..end].chars().all(|c| "imsxu".contains(c)) => (&rest[..end], &rest[end + 1..]),
        _ => ("", pattern),
    }
}

/// Copy a pattern, rewriting what an ARE reads otherwise.
fn rewrite(body: &str, out: &mut String) {
    let mut rest = body;
    let mut in_class = false;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '\\' => rest = escape(rest, in_class, out),
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // a `]` first (after an optional `^`) is a literal, not the end
                for lead in ['^', ']'] {
                    if let Some(r) = rest.strip_prefix(lead) {
                        out.push(lead);
                        rest = r;
                    }
                }
            }
            '[' if rest.starts_with(':') => {
                // a POSIX class inside a bracket expression: `[:alpha:]`
                let end = rest.find(":]").map_or(rest.len(), |i| i + 2);
                out.push('[');
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '(' if !in_class => {
                out.push('(');
                rest = unnamed(rest);
            }
            _ => out.push(c),
        }
    }
}

/// After a `\`: write the escape as an ARE has it; the rest of the pattern.
fn escape<'a>(rest: &'a str, in_class: bool, out: &mut String) -> &'a str {
    let Some(n) = rest.chars().next() else {
        out.push('\\');
        return rest;
    };
    let after = &rest[n.len_utf8()..];
    match n {
        'Q' => {
            let (lit, tail) = after.find("\\E").map_or((after, ""), |j| (&after[..j], &after[j + 2..]));
            for c in lit.chars() {
                if META.contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            return tail;
        }
        'b' if !in_class => {
            for (form, are) in [("{start}", "\\m"), ("{end}", "\\M")] {
                if let Some(tail) = after.strip_prefix(form) {
                    out.push_str(are);
                    return tail;
                }
            }
            out.push_str("\\y");
        }
        'B' if !in_class => out.push_str("\\Y"),
        '<' if !in_class => out.push_str("\\m"),
        '>' if !in_class => out.push_str("\\M"),
        'z' if !in_class => out.push_str("\\Z"),
        'x' if after.starts_with('{') => {
            if let Some((hex, tail)) = after[1..].split_once('}') {
                if (1..=8).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    out.push_str(&format!("\\U{hex:0>8}"));
                    return tail;
                }
            }
            out.push_str("\\x");
        }
        _ => {
            out.push('\\');
            out.push(n);
        }
    }
    after
}

/// After a `(`: a named group's name dropped (`?P<name>`, `?<name>`), so that it is a plain group.
fn unnamed(rest: &str) -> &str {
    let name = rest.strip_prefix("?P<").or_else(|| rest.strip_prefix("?<").filter(|r| !r.starts_with(['=', '!'])));
    match name.and_then(|r| r.split_once('>')) {
        Some((_, tail)) => tail,
        None => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    fn are(p: &str, f: &str) -> String {
        translate(p, f).expect("translates")
    }

    #[test]
    fn flags_become_embedded_options() {
        assert_eq!(are("^GAM", "i"), "(?pi)^GAM");
        assert_eq!(are("a$", ""), "(?p)a$");
        assert_eq!(are("a.b", "m"), "(?n)a.b");
        assert_eq!(are("a.b", "s"), "(?s)a.b");
        assert_eq!(are("a . b", "msx"), "(?wx)a . b");
        assert_eq!(are("(?i)abc", ""), "(?pi)abc");
        assert!(translate("a", "q").is_err());
    }

    #[test]
    fn java_quoting_is_literal() {
        assert_eq!(are("\\Qa.b\\E", ""), "(?p)a\\.b");
        assert_eq!(are("^\\Q(x)\\E$", ""), "(?p)^\\(x\\)$");
        assert_eq!(are("\\Qtail", ""), "(?p)tail");
    }

    #[test]
    fn rust_escapes_become_are_escapes() {
        assert_eq!(are("\\bword\\B", ""), "(?p)\\yword\\Y");
        assert_eq!(are("\\<w\\>", ""), "(?p)\\mw\\M");
        assert_eq!(are("\\b{start}w\\b{end}", ""), "(?p)\\mw\\M");
        assert_eq!(are("end\\z", ""), "(?p)end\\Z");
        assert_eq!(are("\\x{e9}", ""), "(?p)\\U000000e9");
        assert_eq!(are("\\d+\\.\\\\", ""), "(?p)\\d+\\.\\\\");
        assert_eq!(are("[\\b]", ""), "(?p)[\\b]");
    }

    #[test]
    fn classes_and_groups() {
        assert_eq!(are("^u[56]$", ""), "(?p)^u[56]$");
        assert_eq!(are("[]a]\\b", ""), "(?p)[]a]\\y");
        assert_eq!(are("[^]a]", ""), "(?p)[^]a]");
        assert_eq!(are("[[:alpha:]]\\b", ""), "(?p)[[:alpha:]]\\y");
        assert_eq!(are("(?P<y>\\d{4})-(?<m>\\d\\d)", ""), "(?p)(\\d{4})-(\\d\\d)");
        assert_eq!(are("(?:ab)+", ""), "(?p)(?:ab)+");
    }
}
