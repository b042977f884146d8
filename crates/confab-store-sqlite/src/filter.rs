//! Compiles the engine's conversation filters into SQLite SQL.
//!
//! Semantics follow LeanCloud's (MongoDB-style) query language: equality on an array field means
//! "contains"; comparisons only match values of the same type; `$ne`/`$nin` match documents
//! where the field is missing; custom fields live in the `attrs` JSON column, and Date values in
//! them are `{"__type":"Date","iso":…}` objects compared by their canonical ISO string.

use confab_engine::query::{Field, Filter, Op, Scalar};
use confab_engine::{Error, Result};
use confab_store_sql::{cmp_sym, fits, target, ColType, Dialect, Flag, Target};
use rusqlite::types::Value as Sql;

/// SQL text with its positional parameters, in order.
#[derive(Default)]
pub struct Builder {
    pub sql: String,
    pub params: Vec<Sql>,
}

impl Builder {
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }
    pub fn bind(&mut self, v: Sql) -> &mut Self {
        self.sql.push('?');
        self.params.push(v);
        self
    }
    /// `(v1, v2, …)` bound, for `IN`; `(NULL)`, which matches nothing, when empty.
    pub fn list(&mut self, vs: impl IntoIterator<Item = Sql>) -> &mut Self {
        self.push("(");
        let mut empty = true;
        for (i, v) in vs.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
            empty = false;
        }
        if empty {
            self.push("NULL");
        }
        self.push(")")
    }
}

/// A custom field's JSON path literal (its keys checked by `confab_store_sql::target`, so it may
/// be inlined).
fn json_path(path: &[String]) -> String {
    let mut p = String::from("$");
    for key in path {
        p.push_str(&format!(".\"{key}\""));
    }
    p
}

/// The boolean expression of a flag.
fn flag_expr(flag: Flag) -> String {
    match flag {
        Flag::Kind(kind) => format!("(c.kind = {})", kind.code()),
        Flag::Unique => "(c.is_unique = 1)".into(),
    }
}

fn sql_value(v: &Scalar) -> Result<Sql> {
    Ok(match v {
        Scalar::Null => Sql::Null,
        Scalar::Bool(b) => Sql::Integer(*b as i64),
        Scalar::Int(i) => Sql::Integer(*i),
        Scalar::Float(f) => Sql::Real(*f),
        Scalar::Str(s) => Sql::Text(s.clone()),
        Scalar::Date(ms) => Sql::Integer(*ms),
        Scalar::Json(_) => return Err(Error::invalid("objects and arrays can only be compared with custom fields")),
    })
}

/// SQLite's SQL for a filter's leaves; the walk is `confab_store_sql::compile`.
impl Dialect for Builder {
    const TRUE: &'static str = "1";
    const FALSE: &'static str = "0";
    fn push(&mut self, sql: &str) {
        Builder::push(self, sql);
    }
    fn column(&mut self, col: &'static str, ty: ColType, op: &Op) -> Result<()> {
        column(col, ty, op, self)
    }
    fn flag(&mut self, flag: Flag, op: &Op) -> Result<()> {
        self::flag(&flag_expr(flag), op, self)
    }
    fn members(&mut self, field: &Field, notifications_off: bool, op: &Op) -> Result<()> {
        members(field, notifications_off, op, self)
    }
    fn custom(&mut self, path: &[String], op: &Op) -> Result<()> {
        json(&json_path(path), op, self)
    }
}

pub fn compile(f: &Filter, b: &mut Builder) -> Result<()> {
    confab_store_sql::compile(f, b)
}

fn column(col: &str, ty: ColType, op: &Op, b: &mut Builder) -> Result<()> {
    match op {
        Op::Eq(v) | Op::Lt(v) | Op::Lte(v) | Op::Gt(v) | Op::Gte(v) if !fits(ty, v) => {
            b.push("0");
        }
        Op::Ne(v) if !fits(ty, v) => {
            b.push("1");
        }
        Op::Eq(Scalar::Null) | Op::Exists(false) => {
            b.push(&format!("{col} IS NULL"));
        }
        Op::Ne(Scalar::Null) | Op::Exists(true) => {
            b.push(&format!("{col} IS NOT NULL"));
        }
        Op::Eq(v) => {
            b.push(&format!("{col} = ")).bind(sql_value(v)?);
        }
        Op::Ne(v) => {
            b.push(&format!("({col} IS NULL OR {col} <> ")).bind(sql_value(v)?).push(")");
        }
        Op::Lt(v) | Op::Lte(v) | Op::Gt(v) | Op::Gte(v) => {
            if *v == Scalar::Null {
                b.push("0");
            } else {
                b.push(&format!("{col} {} ", cmp_sym(op))).bind(sql_value(v)?);
            }
        }
        Op::In(vs) | Op::Nin(vs) => {
            let has_null = vs.contains(&Scalar::Null);
            let values: Vec<&Scalar> = vs.iter().filter(|v| **v != Scalar::Null && fits(ty, v)).collect();
            let negate = matches!(op, Op::Nin(_));
            b.push("(");
            if values.is_empty() {
                b.push(if negate { "1" } else { "0" });
            } else {
                b.push(&format!("{col} {}IN (", if negate { "NOT " } else { "" }));
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        b.push(", ");
                    }
                    b.bind(sql_value(v)?);
                }
                b.push(")");
            }
            match (negate, has_null) {
                (false, true) => b.push(&format!(" OR {col} IS NULL")),
                (true, false) => b.push(&format!(" OR {col} IS NULL")),
                (true, true) => b.push(&format!(" AND {col} IS NOT NULL")),
                (false, false) => b,
            };
            b.push(")");
        }
        Op::All(vs) => {
            b.push("(1");
            for v in vs {
                b.push(" AND ");
                column(col, ty, &Op::Eq(v.clone()), b)?;
            }
            b.push(")");
        }
        Op::Size(_) => {
            b.push("0");
        }
        Op::Regex { pattern, flags } => {
            b.push("regexp_match(").bind(Sql::Text(pattern.clone())).push(", ").bind(Sql::Text(flags.clone()));
            b.push(&format!(", {col})"));
        }
    }
    Ok(())
}

fn flag(expr: &str, op: &Op, b: &mut Builder) -> Result<()> {
    let as_bool = |v: &Scalar| match v {
        Scalar::Bool(x) => Some(*x),
        _ => None,
    };
    match op {
        Op::Exists(x) => {
            b.push(&format!("{expr} = {}", *x as i64));
        }
        Op::Eq(v) => {
            b.push(&as_bool(v).map_or("0".to_string(), |x| format!("{expr} = {}", x as i64)));
        }
        Op::Ne(v) => match as_bool(v) {
            Some(x) => {
                b.push(&format!("{expr} <> {}", x as i64));
            }
            None => {
                b.push("1");
            }
        },
        Op::In(vs) | Op::Nin(vs) => {
            let bools: Vec<bool> = vs.iter().filter_map(as_bool).collect();
            let hit = if bools.is_empty() {
                "0".to_string()
            } else {
                format!("{expr} IN ({})", bools.iter().map(|x| (*x as i64).to_string()).collect::<Vec<_>>().join(", "))
            };
            b.push(&if matches!(op, Op::Nin(_)) { format!("NOT ({hit})") } else { hit });
        }
        _ => {
            b.push("0");
        }
    }
    Ok(())
}

fn members(field: &Field, notifications_off: bool, op: &Op, b: &mut Builder) -> Result<()> {
    let scope = format!(
        "FROM members mb WHERE mb.app = c.app AND mb.conv = c.id AND mb.role <> 'subscriber'{}",
        if notifications_off { " AND mb.notifications_off = 1" } else { "" }
    );
    let user = |v: &Scalar| match v {
        Scalar::Str(s) => Ok(Sql::Text(s.clone())),
        _ => Err(Error::invalid("member lists hold client ids (strings)")),
    };
    let contains = |b: &mut Builder, v: &Scalar| -> Result<()> {
        b.push(&format!("EXISTS (SELECT 1 {scope} AND mb.user = ")).bind(user(v)?).push(")");
        Ok(())
    };
    let contains_any = |b: &mut Builder, vs: &[Scalar]| -> Result<()> {
        if vs.is_empty() {
            b.push("0");
            return Ok(());
        }
        b.push(&format!("EXISTS (SELECT 1 {scope} AND mb.user IN ("));
        for (i, v) in vs.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.bind(user(v)?);
        }
        b.push("))");
        Ok(())
    };
    match op {
        Op::Eq(Scalar::Json(serde_json::Value::Array(items))) => {
            // exact member set
            let vs: Vec<Scalar> = items.iter().map(|v| Scalar::Str(v.as_str().unwrap_or_default().to_string())).collect();
            b.push(&format!("((SELECT COUNT(*) {scope}) = ")).bind(Sql::Integer(vs.len() as i64));
            for v in &vs {
                b.push(" AND ");
                contains(b, v)?;
            }
            b.push(")");
        }
        Op::Eq(v) => contains(b, v)?,
        Op::Ne(v) => {
            b.push("NOT ");
            contains(b, v)?;
        }
        Op::In(vs) => contains_any(b, vs)?,
        Op::Nin(vs) => {
            b.push("NOT ");
            contains_any(b, vs)?;
        }
        Op::All(vs) => {
            b.push("(1");
            for v in vs {
                b.push(" AND ");
                contains(b, v)?;
            }
            b.push(")");
        }
        Op::Size(n) => {
            b.push(&format!("(SELECT COUNT(*) {scope}) = ")).bind(Sql::Integer(*n));
        }
        Op::Exists(want) => {
            let sql = if *field == Field::Members { "c.kind IN (1, 4, 5)".to_string() } else { format!("EXISTS (SELECT 1 {scope})") };
            b.push(&if *want { sql } else { format!("NOT ({sql})") });
        }
        Op::Regex { pattern, flags } => {
            b.push(&format!("EXISTS (SELECT 1 {scope} AND regexp_match("));
            b.bind(Sql::Text(pattern.clone())).push(", ").bind(Sql::Text(flags.clone())).push(", mb.user))");
        }
        Op::Lt(_) | Op::Lte(_) | Op::Gt(_) | Op::Gte(_) => {
            return Err(Error::invalid("comparison operators do not apply to member lists"));
        }
    }
    Ok(())
}

/// A predicate on one JSON value given its type and value expressions.
fn json_pred(t: &str, v: &str, sym: &str, value: &Scalar, b: &mut Builder) -> Result<()> {
    b.push("COALESCE((");
    match value {
        Scalar::Int(_) | Scalar::Float(_) => {
            b.push(&format!("{t} IN ('integer', 'real') AND {v} {sym} ")).bind(sql_value(value)?);
        }
        Scalar::Str(s) => {
            b.push(&format!("{t} = 'text' AND {v} {sym} ")).bind(Sql::Text(s.clone()));
        }
        Scalar::Bool(x) if sym == "=" => {
            b.push(&format!("{t} = '{}'", if *x { "true" } else { "false" }));
        }
        Scalar::Null if sym == "=" => {
            b.push(&format!("{t} = 'null'"));
        }
        Scalar::Date(ms) => {
            // CASE, not AND: SQLite may evaluate both sides of an AND, and json_extract fails on
            // a text value that is not JSON
            b.push(&format!("(CASE WHEN {t} = 'object' THEN json_extract({v}, '$.iso') END) {sym} "))
                .bind(Sql::Text(confab_engine::time::iso_ms(*ms)));
        }
        Scalar::Json(j) if sym == "=" => {
            b.push(&format!("{t} IN ('object', 'array') AND {v} = json(")).bind(Sql::Text(j.to_string())).push(")");
        }
        _ => {
            b.push("0");
        }
    }
    b.push("), 0)");
    Ok(())
}

/// The predicate holds for the field itself or, when it is an array, for one of its elements.
fn json_any(path: &str, b: &mut Builder, pred: &dyn Fn(&str, &str, &mut Builder) -> Result<()>) -> Result<()> {
    let t = format!("json_type(c.attrs, '{path}')");
    let v = format!("json_extract(c.attrs, '{path}')");
    b.push("(");
    pred(&t, &v, b)?;
    b.push(&format!(" OR ({t} = 'array' AND EXISTS (SELECT 1 FROM json_each(c.attrs, '{path}') j WHERE "));
    pred("j.type", "j.value", b)?;
    b.push(")))");
    Ok(())
}

fn json(path: &str, op: &Op, b: &mut Builder) -> Result<()> {
    let t = format!("json_type(c.attrs, '{path}')");
    match op {
        Op::Eq(Scalar::Null) => {
            b.push(&format!("({t} IS NULL OR {t} = 'null')"));
        }
        Op::Ne(Scalar::Null) => {
            b.push(&format!("({t} IS NOT NULL AND {t} <> 'null')"));
        }
        Op::Eq(v) => json_any(path, b, &|t, x, b| json_pred(t, x, "=", v, b))?,
        Op::Ne(v) => {
            b.push("NOT ");
            json_any(path, b, &|t, x, b| json_pred(t, x, "=", v, b))?;
        }
        Op::Lt(v) | Op::Lte(v) | Op::Gt(v) | Op::Gte(v) => {
            let sym = cmp_sym(op);
            json_any(path, b, &|t, x, b| json_pred(t, x, sym, v, b))?;
        }
        Op::In(vs) | Op::Nin(vs) => {
            if matches!(op, Op::Nin(_)) {
                b.push("NOT ");
            }
            b.push("(0");
            for v in vs {
                b.push(" OR ");
                if *v == Scalar::Null {
                    b.push(&format!("({t} IS NULL OR {t} = 'null')"));
                } else {
                    json_any(path, b, &|t, x, b| json_pred(t, x, "=", v, b))?;
                }
            }
            b.push(")");
        }
        Op::All(vs) => {
            b.push("(1");
            for v in vs {
                b.push(" AND ");
                json_any(path, b, &|t, x, b| json_pred(t, x, "=", v, b))?;
            }
            b.push(")");
        }
        Op::Size(n) => {
            b.push(&format!("({t} = 'array' AND json_array_length(c.attrs, '{path}') = ")).bind(Sql::Integer(*n)).push(")");
        }
        Op::Exists(want) => {
            b.push(&format!("{t} IS {}NULL", if *want { "NOT " } else { "" }));
        }
        Op::Regex { pattern, flags } => {
            json_any(path, b, &|t, x, b| {
                b.push(&format!("COALESCE(({t} = 'text' AND regexp_match("));
                b.bind(Sql::Text(pattern.clone())).push(", ").bind(Sql::Text(flags.clone()));
                b.push(&format!(", {x})), 0)"));
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// The SQL expression an ORDER BY uses for a field.
pub fn order_expr(f: &Field) -> Result<String> {
    Ok(match target(f)? {
        Target::Column(c, _) => c.to_string(),
        Target::Flag(flag) => flag_expr(flag),
        Target::Custom(p) => format!("json_extract(c.attrs, '{}')", json_path(p)),
        Target::Members { .. } => return Err(Error::invalid("cannot order by a member list")),
    })
}
