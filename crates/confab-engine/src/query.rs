//! Queries the engine asks of a store: conversation filters (the LeanCloud `where` language
//! maps onto these), member listings, message history ranges and how far unread counts go.

use serde_json::Value;

pub use crate::limits::UnreadBounds;
use crate::model::{ConvKind, Role};

/// A conversation field a filter or an order can name.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Id,
    Name,
    Creator,
    /// True for chat rooms (LeanCloud `tr`).
    Transient,
    /// True for service conversations (LeanCloud `sys`).
    System,
    /// True for temporary conversations.
    Temporary,
    Unique,
    UniqueId,
    /// The member list (array field).
    Members,
    /// Members who turned notifications off (array field, LeanCloud `mu`).
    Muted,
    CreatedAt,
    UpdatedAt,
    LastMessageAt,
    /// A thread's group, and the group message it hangs from.
    ParentConv,
    ParentMsg,
    /// A custom field, or a path into one (`attr.color` is `["attr", "color"]`).
    Custom(Vec<String>),
}

/// A typed value in a filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A point in time, Unix ms (LeanCloud `{"__type":"Date"}`).
    Date(i64),
    /// Any other JSON value (objects, arrays), compared by equality only.
    Json(Value),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Equality; on array fields, "the array contains".
    Eq(Scalar),
    Ne(Scalar),
    Lt(Scalar),
    Lte(Scalar),
    Gt(Scalar),
    Gte(Scalar),
    /// One of; on array fields, "contains any of".
    In(Vec<Scalar>),
    /// None of; on array fields, "contains none of".
    Nin(Vec<Scalar>),
    /// Array contains all of.
    All(Vec<Scalar>),
    /// Array length.
    Size(i64),
    Exists(bool),
    /// Regular expression (Rust `regex` syntax) with flags from `imsx`.
    Regex {
        pattern: String,
        flags: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    True,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Cond(Field, Op),
}

/// A query over an app's conversations.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvQuery {
    /// Only these kinds (None = every kind).
    pub kinds: Option<Vec<ConvKind>>,
    pub filter: Filter,
    /// Sort keys, each (field, descending). Ties and the default order: by id, ascending
    /// (creation order).
    pub order: Vec<(Field, bool)>,
    pub skip: i64,
    pub limit: i64,
    /// Also count every match (ignoring skip and limit).
    pub count: bool,
}

impl Default for ConvQuery {
    fn default() -> Self {
        ConvQuery { kinds: None, filter: Filter::True, order: vec![], skip: 0, limit: 100, count: false }
    }
}

/// A listing of a conversation's members.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberQuery {
    /// Only these users.
    pub users: Option<Vec<String>>,
    /// Only these roles (None = every role but subscriber).
    pub roles: Option<Vec<Role>>,
    /// Only members with notifications turned off.
    pub notifications_off: bool,
    /// Only members speech-muted at this time (Unix ms).
    pub muted_at: Option<i64>,
    /// Members whose user id sorts after this one (cursor paging by user id).
    pub after: Option<String>,
    pub limit: Option<i64>,
}

/// A listing of one user's memberships (a client's subscribed service conversations).
#[derive(Clone, Debug, PartialEq)]
pub struct MembershipQuery {
    pub role: Option<Role>,
    pub kind: Option<ConvKind>,
    /// Start after this (joined_at, conversation id).
    pub after: Option<(i64, i64)>,
    /// Newest first.
    pub descending: bool,
    pub limit: i64,
}

/// Which messages a history query ranges over.
#[derive(Clone, Debug, PartialEq)]
pub enum HistoryScope {
    /// One conversation.
    Conv(i64),
    /// One conversation as one user sees it: messages addressed to others are left out.
    ConvAs { conv: i64, user: String },
    /// Everything one user sent.
    Sender(String),
    /// The whole app.
    App,
}

/// One end of a history range: a message position (timestamp, and the message id when known).
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub timestamp: i64,
    pub id: Option<i64>,
    pub inclusive: bool,
}

/// A range of messages. `older_than` is the upper end of the range and `newer_than` the lower
/// end; each may be open. Results are newest first unless `ascending`.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    pub older_than: Option<Bound>,
    pub newer_than: Option<Bound>,
    pub ascending: bool,
    pub limit: i64,
    /// Only messages of this type.
    pub mtype: Option<i64>,
}

/// Java-style quoting (`\Q…\E`, which LeanCloud's SDKs send for contains / startsWith /
/// endsWith) rewritten as escaped literals, which the `regex` crate understands.
fn unquote(pattern: &str) -> std::borrow::Cow<'_, str> {
    if !pattern.contains("\\Q") {
        return pattern.into();
    }
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('Q') => {
                let body = &after[1..];
                let (lit, tail) = body.find("\\E").map_or((body, ""), |j| (&body[..j], &body[j + 2..]));
                out.push_str(&regex::escape(lit));
                rest = tail;
            }
            Some(c) => {
                out.push('\\');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
            None => {
                out.push('\\');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.into()
}

/// Compile a `$regex` pattern with LeanCloud/MongoDB options (`i`, `m`, `s`, `x`), bounded in
/// size so no pattern can exhaust memory. Stores use this to evaluate `Op::Regex`.
pub fn compile_regex(pattern: &str, flags: &str) -> Result<regex::Regex, String> {
    let mut b = regex::RegexBuilder::new(&unquote(pattern));
    for f in flags.chars() {
        match f {
            'i' => b.case_insensitive(true),
            'm' => b.multi_line(true),
            's' => b.dot_matches_new_line(true),
            'x' => b.ignore_whitespace(true),
            other => return Err(format!("unknown regex option '{other}'")),
        };
    }
    b.size_limit(1 << 20).dfa_size_limit(1 << 20);
    b.build().map_err(|e| e.to_string())
}

impl Filter {
    /// Check what a store cannot: every regular expression compiles.
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            Filter::True => Ok(()),
            Filter::And(fs) | Filter::Or(fs) => fs.iter().try_for_each(Filter::validate),
            Filter::Cond(_, Op::Regex { pattern, flags }) => {
                compile_regex(pattern, flags).map(|_| ()).map_err(|e| crate::Error::invalid(format!("bad $regex: {e}")))
            }
            Filter::Cond(..) => Ok(()),
        }
    }
}

#[cfg(test)]
mod regex_tests {
    use super::compile_regex;

    #[test]
    fn java_quoted_text_is_literal() {
        // what the JS SDK sends for contains('.'), startsWith('a.b'), endsWith('x\\Ey')
        assert!(compile_regex("\\Q.\\E", "").unwrap().is_match("a.b"));
        assert!(!compile_regex("\\Q.\\E", "").unwrap().is_match("ab"));
        assert!(compile_regex("^\\Qa.b\\E", "").unwrap().is_match("a.bc"));
        assert!(!compile_regex("^\\Qa.b\\E", "").unwrap().is_match("axbc"));
        let re = compile_regex("\\Qx\\E\\\\E\\Qy\\E$", "").unwrap();
        assert!(re.is_match("x\\Ey"));
        assert!(compile_regex("\\QA(\\E", "i").unwrap().is_match("a("));
        assert!(compile_regex("\\d+\\Q.\\E", "").unwrap().is_match("12."));
    }
}
