//! Queries built at run time (the embedded store's `filter.rs`, in PostgreSQL's SQL): the
//! [`Builder`] of SQL text with its `$n` parameters, and the compiler of the engine's
//! conversation filters into it.
//!
//! Semantics follow LeanCloud's (MongoDB-style) query language, as in the embedded store:
//! equality on an array field means "contains"; comparisons only match values of the same type;
//! `$ne`/`$nin` match documents where the field is missing; custom fields live in the `attrs`
//! JSONB column, and Date values in them are `{"__type":"Date","iso":…}` objects compared by
//! their canonical ISO string. Strings compare bytewise (`COLLATE "C"`), as MongoDB and SQLite
//! compare them, whatever the database's collation. Regular expressions run as PostgreSQL's
//! (`are.rs` says how they are translated, and where they differ).

mod are;

use confab_engine::query::{compile_regex, Field, Filter, Op, Scalar};
use confab_engine::{Error, Result};
use confab_store_sql::{cmp_sym, fits, target, ColType, Dialect, Flag, Target};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

/// A bound value, owned by the builder until the statement runs.
type Arg = Box<dyn ToSql + Sync + Send>;

/// SQL text with its parameters, numbered `$1`, `$2`, … in the order they are bound. Every
/// placeholder is cast to the type its value is sent as (`$3::BIGINT`), so that PostgreSQL never
/// has to guess it from the context.
#[derive(Default)]
pub(crate) struct Builder {
    sql: String,
    args: Vec<Arg>,
}

impl Builder {
    pub fn new(sql: &str) -> Builder {
        Builder { sql: sql.to_string(), args: Vec::new() }
    }

    pub fn push(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }

    /// Keep a value and return its placeholder (`$n::ty`), to be written once or several times.
    pub fn param<T: ToSql + Sync + Send + 'static>(&mut self, v: T, ty: &str) -> String {
        self.args.push(Box::new(v));
        format!("${}::{ty}", self.args.len())
    }

    /// Write a value's placeholder.
    pub fn bind<T: ToSql + Sync + Send + 'static>(&mut self, v: T, ty: &str) -> &mut Self {
        let p = self.param(v, ty);
        self.push(&p)
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        self.bind(v, "BIGINT")
    }

    pub fn text(&mut self, v: &str) -> &mut Self {
        self.bind(v.to_string(), "TEXT")
    }

    /// A list of strings, for `= ANY(…)` (an empty list matches nothing).
    pub fn texts(&mut self, vs: &[String]) -> &mut Self {
        self.bind(vs.to_vec(), "TEXT[]")
    }

    /// `LIMIT` with this bound: a negative one means none, as in SQLite.
    pub fn limit(&mut self, n: i64) -> &mut Self {
        self.push(" LIMIT ").bind((n >= 0).then_some(n), "BIGINT")
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// How many values are bound so far.
    pub fn bound(&self) -> usize {
        self.args.len()
    }

    /// The first `n` values, as a statement takes them.
    pub fn args_upto(&self, n: usize) -> Vec<&(dyn ToSql + Sync)> {
        self.args.iter().take(n).map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect()
    }

    /// Every value bound, as a statement takes them.
    pub fn args(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args_upto(self.args.len())
    }
}

/// A query's error: a regular expression PostgreSQL refuses is the caller's (`Invalid`), any
/// other a failure of the store.
pub(crate) fn query_err(e: tokio_postgres::Error) -> Error {
    if e.code() == Some(&SqlState::INVALID_REGULAR_EXPRESSION) {
        let why = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string());
        return Error::invalid(format!("bad $regex: {why}"));
    }
    crate::pg_err(e)
}

/// The boolean expression of a flag.
fn flag_expr(flag: Flag) -> String {
    match flag {
        Flag::Kind(kind) => format!("(c.kind = {})", kind.code()),
        Flag::Unique => "c.is_unique".into(),
    }
}

/// A custom field's value: its path into `attrs`, bound.
fn custom_value(path: &[String], b: &mut Builder) -> String {
    format!("(c.attrs #> {})", b.param(path.to_vec(), "TEXT[]"))
}

/// Bind a value compared with a built-in column. Objects and arrays compare only with custom
/// fields.
fn bind_scalar(v: &Scalar, b: &mut Builder) -> Result<()> {
    match v {
        Scalar::Null => b.push("NULL"),
        Scalar::Bool(x) => b.bind(*x, "BOOLEAN"),
        Scalar::Int(i) | Scalar::Date(i) => b.int(*i),
        Scalar::Float(f) => b.bind(*f, "FLOAT8"),
        Scalar::Str(s) => b.text(s),
        Scalar::Json(_) => return Err(Error::invalid("objects and arrays can only be compared with custom fields")),
    };
    Ok(())
}

/// PostgreSQL's SQL for a filter's leaves; the walk is `confab_store_sql::compile`. The
/// expression is never NULL where it is negated, so that `NOT` means "does not match".
impl Dialect for Builder {
    const TRUE: &'static str = "TRUE";
    const FALSE: &'static str = "FALSE";
    fn push(&mut self, sql: &str) {
        Builder::push(self, sql);
    }
    fn column(&mut self, col: &'static str, ty: ColType, op: &Op) -> Result<()> {
        column(col, ty, op, self)
    }
    fn flag(&mut self, flag: Flag, op: &Op) -> Result<()> {
        self::flag(&flag_expr(flag), op, self);
        Ok(())
    }
    fn members(&mut self, field: &Field, notifications_off: bool, op: &Op) -> Result<()> {
        members(field, notifications_off, op, self)
    }
    fn custom(&mut self, path: &[String], op: &Op) -> Result<()> {
        let x = custom_value(path, self);
        json(&x, op, self)
    }
}

/// Compile a filter into a boolean SQL expression on conversations aliased `c`.
pub(crate) fn compile(f: &Filter, b: &mut Builder) -> Result<()> {
    confab_store_sql::compile(f, b)
}

/// A column as an ordering compares it: text bytewise.
fn ordered(col: &str, ty: ColType) -> String {
    match ty {
        ColType::Text => format!("{col} COLLATE \"C\""),
        ColType::Number => col.to_string(),
    }
}

fn column(col: &str, ty: ColType, op: &Op, b: &mut Builder) -> Result<()> {
    match op {
        Op::Eq(v) | Op::Lt(v) | Op::Lte(v) | Op::Gt(v) | Op::Gte(v) if !fits(ty, v) => {
            b.push("FALSE");
        }
        Op::Ne(v) if !fits(ty, v) => {
            b.push("TRUE");
        }
        Op::Eq(Scalar::Null) | Op::Exists(false) => {
            b.push(&format!("{col} IS NULL"));
        }
        Op::Ne(Scalar::Null) | Op::Exists(true) => {
            b.push(&format!("{col} IS NOT NULL"));
        }
        Op::Eq(v) => {
            b.push(&format!("{col} = "));
            bind_scalar(v, b)?;
        }
        Op::Ne(v) => {
            b.push(&format!("({col} IS NULL OR {col} <> "));
            bind_scalar(v, b)?;
            b.push(")");
        }
        Op::Lt(v) | Op::Lte(v) | Op::Gt(v) | Op::Gte(v) => {
            if *v == Scalar::Null {
                b.push("FALSE");
            } else {
                b.push(&format!("COALESCE({} {} ", ordered(col, ty), cmp_sym(op)));
                bind_scalar(v, b)?;
                b.push(", FALSE)");
            }
        }
        Op::In(vs) | Op::Nin(vs) => column_in(col, ty, vs, matches!(op, Op::Nin(_)), b)?,
        Op::All(vs) => {
            b.push("(TRUE");
            for v in vs {
                b.push(" AND ");
                column(col, ty, &Op::Eq(v.clone()), b)?;
            }
            b.push(")");
        }
        Op::Size(_) => {
            b.push("FALSE");
        }
        Op::Regex { pattern, flags } => match (ty, regex(pattern, flags)?) {
            (ColType::Text, Some(re)) => {
                b.push(&format!("COALESCE({col} ~ ")).bind(re, "TEXT").push(", FALSE)");
            }
            // a number is not text, and a pattern the engine would not compile matches nothing
            _ => {
                b.push("FALSE");
            }
        },
    }
    Ok(())
}

/// `$in` (or `$nin` when `negate`) on a built-in column: null in the list matches a missing
/// value; `$nin` matches a missing value unless null is in the list.
fn column_in(col: &str, ty: ColType, vs: &[Scalar], negate: bool, b: &mut Builder) -> Result<()> {
    let has_null = vs.contains(&Scalar::Null);
    let values: Vec<&Scalar> = vs.iter().filter(|v| **v != Scalar::Null && fits(ty, v)).collect();
    b.push("(");
    if values.is_empty() {
        b.push(if negate { "TRUE" } else { "FALSE" });
    } else {
        b.push(&format!("{col} {}IN (", if negate { "NOT " } else { "" }));
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            bind_scalar(v, b)?;
        }
        b.push(")");
    }
    match (negate, has_null) {
        (false, true) | (true, false) => b.push(&format!(" OR {col} IS NULL")),
        (true, true) => b.push(&format!(" AND {col} IS NOT NULL")),
        (false, false) => b,
    };
    b.push(")");
    Ok(())
}

/// A boolean field: only booleans equal it.
fn flag(expr: &str, op: &Op, b: &mut Builder) {
    let as_bool = |v: &Scalar| match v {
        Scalar::Bool(x) => Some(*x),
        _ => None,
    };
    let sql = match op {
        Op::Exists(x) => format!("{expr} = {x}"),
        Op::Eq(v) => as_bool(v).map_or("FALSE".to_string(), |x| format!("{expr} = {x}")),
        Op::Ne(v) => as_bool(v).map_or("TRUE".to_string(), |x| format!("{expr} <> {x}")),
        Op::In(vs) | Op::Nin(vs) => {
            let bools: Vec<String> = vs.iter().filter_map(as_bool).map(|x| x.to_string()).collect();
            let hit = if bools.is_empty() { "FALSE".to_string() } else { format!("{expr} IN ({})", bools.join(", ")) };
            if matches!(op, Op::Nin(_)) {
                format!("NOT ({hit})")
            } else {
                hit
            }
        }
        _ => "FALSE".to_string(),
    };
    b.push(&sql);
}

/// The member list (or the list of members who turned notifications off) as an array of user
/// ids: subscribers are not members.
fn members(field: &Field, notifications_off: bool, op: &Op, b: &mut Builder) -> Result<()> {
    let scope = format!(
        "FROM members mb WHERE mb.app = c.app AND mb.conv = c.id AND mb.role <> 'subscriber'{}",
        if notifications_off { " AND mb.notifications_off" } else { "" }
    );
    match op {
        Op::Eq(Scalar::Json(Value::Array(items))) => {
            // exactly this member set
            let users: Vec<String> = items.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect();
            b.push(&format!("((SELECT COUNT(*) {scope}) = ")).int(users.len() as i64);
            for u in &users {
                b.push(&format!(" AND EXISTS (SELECT 1 {scope} AND mb.user_id = ")).text(u).push(")");
            }
            b.push(")");
        }
        Op::Eq(v) => contains_any(&scope, std::slice::from_ref(v), b)?,
        Op::Ne(v) => {
            b.push("NOT ");
            contains_any(&scope, std::slice::from_ref(v), b)?;
        }
        Op::In(vs) => contains_any(&scope, vs, b)?,
        Op::Nin(vs) => {
            b.push("NOT ");
            contains_any(&scope, vs, b)?;
        }
        Op::All(vs) => {
            b.push("(TRUE");
            for v in vs {
                b.push(" AND ");
                contains_any(&scope, std::slice::from_ref(v), b)?;
            }
            b.push(")");
        }
        Op::Size(n) => {
            b.push(&format!("(SELECT COUNT(*) {scope}) = ")).int(*n);
        }
        Op::Exists(want) => {
            // every conversation with a stored member list has the field, empty or not
            let sql = if *field == Field::Members { "c.kind IN (1, 4, 5)".to_string() } else { format!("EXISTS (SELECT 1 {scope})") };
            b.push(&if *want { sql } else { format!("NOT ({sql})") });
        }
        Op::Regex { pattern, flags } => match regex(pattern, flags)? {
            Some(re) => {
                b.push(&format!("EXISTS (SELECT 1 {scope} AND mb.user_id ~ ")).bind(re, "TEXT").push(")");
            }
            None => {
                b.push("FALSE");
            }
        },
        Op::Lt(_) | Op::Lte(_) | Op::Gt(_) | Op::Gte(_) => {
            return Err(Error::invalid("comparison operators do not apply to member lists"));
        }
    }
    Ok(())
}

/// `EXISTS` a member among these users (never NULL; false for an empty list).
fn contains_any(scope: &str, vs: &[Scalar], b: &mut Builder) -> Result<()> {
    let users = vs
        .iter()
        .map(|v| match v {
            Scalar::Str(s) => Ok(s.clone()),
            _ => Err(Error::invalid("member lists hold client ids (strings)")),
        })
        .collect::<Result<Vec<String>>>()?;
    b.push(&format!("EXISTS (SELECT 1 {scope} AND mb.user_id = ANY(")).bind(users, "TEXT[]").push("))");
    Ok(())
}

/// A predicate on one JSON value `x` (a `jsonb` expression, NULL when missing): true only for a
/// value of the compared one's type; never NULL.
fn json_pred(x: &str, sym: &str, value: &Scalar, b: &mut Builder) -> Result<()> {
    let typed = |b: &mut Builder, ty: &str, lhs: &str| {
        b.push(&format!("COALESCE(CASE WHEN jsonb_typeof({x}) = '{ty}' THEN {lhs} {sym} "));
    };
    match value {
        Scalar::Int(i) => {
            typed(b, "number", &format!("({x})::NUMERIC"));
            b.int(*i).push(" END, FALSE)");
        }
        Scalar::Float(f) => {
            typed(b, "number", &format!("({x})::NUMERIC"));
            b.bind(*f, "FLOAT8").push(" END, FALSE)");
        }
        Scalar::Str(s) => {
            typed(b, "string", &format!("({x} #>> '{{}}') COLLATE \"C\""));
            b.text(s).push(" END, FALSE)");
        }
        Scalar::Date(ms) => {
            // a Date is an object; its canonical ISO string orders as the time does
            typed(b, "object", &format!("({x} ->> 'iso') COLLATE \"C\""));
            b.text(&confab_engine::time::iso_ms(*ms)).push(" END, FALSE)");
        }
        Scalar::Bool(v) if sym == "=" => {
            b.push(&format!("COALESCE({x} = '{v}'::JSONB, FALSE)"));
        }
        Scalar::Null if sym == "=" => {
            b.push(&format!("COALESCE(jsonb_typeof({x}) = 'null', FALSE)"));
        }
        Scalar::Json(j) if sym == "=" => {
            b.push(&format!("COALESCE(jsonb_typeof({x}) IN ('object', 'array') AND {x} = ")).bind(j.clone(), "JSONB").push(", FALSE)");
        }
        _ => {
            b.push("FALSE");
        }
    }
    Ok(())
}

/// The predicate holds for the value itself or, when it is an array, for one of its elements
/// (the CASE keeps `jsonb_array_elements` from ever seeing anything but an array).
fn json_any(x: &str, b: &mut Builder, pred: &dyn Fn(&str, &mut Builder) -> Result<()>) -> Result<()> {
    b.push("(");
    pred(x, b)?;
    b.push(&format!(" OR CASE WHEN jsonb_typeof({x}) = 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements({x}) j(e) WHERE "));
    pred("j.e", b)?;
    b.push(") ELSE FALSE END)");
    Ok(())
}

/// A condition on a custom field, `x` its value (`c.attrs #> path`).
fn json(x: &str, op: &Op, b: &mut Builder) -> Result<()> {
    let is_null = format!("({x} IS NULL OR jsonb_typeof({x}) = 'null')");
    match op {
        Op::Eq(Scalar::Null) => {
            b.push(&is_null);
        }
        Op::Ne(Scalar::Null) => {
            b.push(&format!("NOT {is_null}"));
        }
        Op::Eq(v) => json_any(x, b, &|x, b| json_pred(x, "=", v, b))?,
        Op::Ne(v) => {
            b.push("NOT ");
            json_any(x, b, &|x, b| json_pred(x, "=", v, b))?;
        }
        Op::Lt(v) | Op::Lte(v) | Op::Gt(v) | Op::Gte(v) => {
            let sym = cmp_sym(op);
            json_any(x, b, &|x, b| json_pred(x, sym, v, b))?;
        }
        Op::In(vs) | Op::Nin(vs) => {
            if matches!(op, Op::Nin(_)) {
                b.push("NOT ");
            }
            b.push("(FALSE");
            for v in vs {
                b.push(" OR ");
                if *v == Scalar::Null {
                    b.push(&is_null);
                } else {
                    json_any(x, b, &|x, b| json_pred(x, "=", v, b))?;
                }
            }
            b.push(")");
        }
        Op::All(vs) => {
            b.push("(TRUE");
            for v in vs {
                b.push(" AND ");
                json_any(x, b, &|x, b| json_pred(x, "=", v, b))?;
            }
            b.push(")");
        }
        Op::Size(n) => {
            b.push(&format!("COALESCE(CASE WHEN jsonb_typeof({x}) = 'array' THEN jsonb_array_length({x}) = ")).int(*n).push(" END, FALSE)");
        }
        Op::Exists(want) => {
            b.push(&format!("{x} IS {}NULL", if *want { "NOT " } else { "" }));
        }
        Op::Regex { pattern, flags } => match regex(pattern, flags)? {
            Some(re) => {
                let re = b.param(re, "TEXT");
                json_any(x, b, &|x, b| {
                    b.push(&format!("COALESCE(CASE WHEN jsonb_typeof({x}) = 'string' THEN ({x} #>> '{{}}') ~ {re} END, FALSE)"));
                    Ok(())
                })?;
            }
            None => {
                b.push("FALSE");
            }
        },
    }
    Ok(())
}

/// A `$regex` as PostgreSQL runs it, or None for one the engine's `compile_regex` refuses: the
/// embedded store matches nothing with those, and so does this one. A pattern the engine takes
/// but PostgreSQL cannot run is refused when the query runs (`query_err`: `Invalid`).
fn regex(pattern: &str, flags: &str) -> Result<Option<String>> {
    if compile_regex(pattern, flags).is_err() {
        return Ok(None);
    }
    are::translate(pattern, flags).map(Some)
}

/// Write the ORDER BY keys of one field: a missing value sorts as the smallest (first
/// ascending, last descending), as in the embedded store.
pub(crate) fn order_by(f: &Field, desc: bool, b: &mut Builder) -> Result<()> {
    let dir = if desc { "DESC NULLS LAST" } else { "ASC NULLS FIRST" };
    let keys = match target(f)? {
        Target::Column(c, ty) => vec![ordered(c, ty)],
        Target::Flag(flag) => vec![flag_expr(flag)],
        Target::Custom(path) => {
            let x = custom_value(path, b);
            json_order(&x)
        }
        Target::Members { .. } => return Err(Error::invalid("cannot order by a member list")),
    };
    let keys: Vec<String> = keys.into_iter().map(|k| format!("{k} {dir}")).collect();
    b.push(&keys.join(", "));
    Ok(())
}

/// The keys a custom field sorts by, in the embedded store's order of SQLite's values: missing
/// and null first, then numbers (false as 0, true as 1) by value, then strings, and objects and
/// arrays by their JSON text, bytewise. (The JSON text of an object is PostgreSQL's, keys in
/// `jsonb`'s order; Date objects still sort by their time.)
fn json_order(x: &str) -> Vec<String> {
    vec![
        format!("CASE COALESCE(jsonb_typeof({x}), 'null') WHEN 'null' THEN 0 WHEN 'number' THEN 1 WHEN 'boolean' THEN 1 ELSE 2 END"),
        format!(
            "CASE jsonb_typeof({x}) WHEN 'number' THEN ({x})::NUMERIC WHEN 'boolean' THEN CASE WHEN {x} = 'true'::JSONB THEN 1 ELSE 0 END END"
        ),
        format!("CASE WHEN jsonb_typeof({x}) IN ('string', 'object', 'array') THEN {x} #>> '{{}}' END COLLATE \"C\""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_and_typed() {
        let mut b = Builder::new("SELECT 1 WHERE ");
        compile(&Filter::Cond(Field::Name, Op::Eq(Scalar::Str("a".into()))), &mut b).expect("compile");
        b.push(" AND ");
        compile(&Filter::Cond(Field::CreatedAt, Op::Gt(Scalar::Int(5))), &mut b).expect("compile");
        assert_eq!(b.sql(), "SELECT 1 WHERE c.name = $1::TEXT AND COALESCE(c.created_at > $2::BIGINT, FALSE)");
        assert_eq!(b.bound(), 2);
    }

    #[test]
    fn a_regex_the_engine_refuses_matches_nothing() {
        let mut b = Builder::default();
        compile(&Filter::Cond(Field::Name, Op::Regex { pattern: "(".into(), flags: String::new() }), &mut b).expect("compile");
        assert_eq!(b.sql(), "FALSE");
    }
}
