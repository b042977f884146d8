//! LeanCloud's storage query language (`where`, `order`, `skip`, `limit`, `count`) translated
//! into the engine's conversation query, and custom field values checked and normalised.

use axum::http::StatusCode;
use confab_engine::model::ConvKind;
use confab_engine::query::{ConvQuery, Field, Filter, Op, Scalar};
use confab_engine::time::{iso_ms, parse_iso};
use serde_json::{Map, Value};

use crate::error::{LcError, LcResult};
use crate::extract::Params;

/// Default and maximum of `limit`. Out-of-range values are coerced to the default, as
/// LeanCloud's storage API does.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

fn bad_query(msg: impl Into<String>) -> LcError {
    LcError::new(StatusCode::BAD_REQUEST, 1, msg)
}

/// A valid LeanCloud key: a letter, then letters, digits or underscores.
pub fn valid_key(k: &str) -> bool {
    let mut c = k.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic()) && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

pub fn invalid_key(k: &str) -> LcError {
    LcError::new(StatusCode::BAD_REQUEST, 105, format!("Invalid key name. {k}"))
}

/// The engine field a conversation key names.
pub fn field(name: &str) -> LcResult<Field> {
    Ok(match name {
        "objectId" => Field::Id,
        "name" => Field::Name,
        "c" => Field::Creator,
        "tr" => Field::Transient,
        "sys" => Field::System,
        "temp" => Field::Temporary,
        "unique" => Field::Unique,
        "uniqueId" => Field::UniqueId,
        "m" => Field::Members,
        "mu" => Field::Muted,
        "createdAt" => Field::CreatedAt,
        "updatedAt" => Field::UpdatedAt,
        "lm" => Field::LastMessageAt,
        _ => {
            let path: Vec<String> = name.split('.').map(str::to_string).collect();
            if !path.iter().all(|p| valid_key(p)) {
                return Err(invalid_key(name));
            }
            Field::Custom(path)
        }
    })
}

fn is_date_field(f: &Field) -> bool {
    matches!(f, Field::CreatedAt | Field::UpdatedAt | Field::LastMessageAt)
}

/// `{"__type": "Date", "iso": …}` → Unix ms.
fn typed_date(v: &Value) -> Option<LcResult<i64>> {
    let o = v.as_object()?;
    if o.get("__type").and_then(Value::as_str) != Some("Date") {
        return None;
    }
    Some(
        o.get("iso")
            .and_then(Value::as_str)
            .and_then(parse_iso)
            .ok_or_else(|| bad_query("Invalid Date: 'iso' must be an ISO-8601 date-time.")),
    )
}

fn scalar(f: &Field, v: &Value) -> LcResult<Scalar> {
    if let Some(d) = typed_date(v) {
        return Ok(Scalar::Date(d?));
    }
    if is_date_field(f) {
        return match v {
            Value::String(s) => parse_iso(s).map(Scalar::Date).ok_or_else(|| bad_query(format!("Invalid date '{s}'."))),
            Value::Number(n) => n.as_i64().map(Scalar::Date).ok_or_else(|| bad_query("Invalid date.")),
            Value::Null => Ok(Scalar::Null),
            _ => Err(bad_query("Dates are compared with {\"__type\":\"Date\",\"iso\":…} values.")),
        };
    }
    Ok(match v {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Scalar::Int(i),
            None => Scalar::Float(n.as_f64().unwrap_or(0.0)),
        },
        // conversation ids are decimal; any other string names no conversation
        Value::String(s) if *f == Field::Id => s.parse().map(Scalar::Int).unwrap_or_else(|_| Scalar::Str(s.clone())),
        Value::String(s) => Scalar::Str(s.clone()),
        other => Scalar::Json(canonical(other.clone())?),
    })
}

fn scalars(f: &Field, op: &str, v: &Value) -> LcResult<Vec<Scalar>> {
    v.as_array().ok_or_else(|| bad_query(format!("{op} expects an array.")))?.iter().map(|x| scalar(f, x)).collect()
}

fn condition(f: Field, v: &Value) -> LcResult<Filter> {
    let Some(ops) = v.as_object().filter(|o| o.keys().next().is_some_and(|k| k.starts_with('$'))) else {
        return Ok(Filter::Cond(f.clone(), Op::Eq(scalar(&f, v)?)));
    };
    if ops.contains_key("$options") && !ops.contains_key("$regex") {
        return Err(bad_query("$options needs $regex."));
    }
    let mut all = Vec::new();
    for (op, arg) in ops {
        let op = match op.as_str() {
            "$ne" => Op::Ne(scalar(&f, arg)?),
            "$lt" => Op::Lt(scalar(&f, arg)?),
            "$lte" => Op::Lte(scalar(&f, arg)?),
            "$gt" => Op::Gt(scalar(&f, arg)?),
            "$gte" => Op::Gte(scalar(&f, arg)?),
            "$in" => Op::In(scalars(&f, "$in", arg)?),
            "$nin" => Op::Nin(scalars(&f, "$nin", arg)?),
            "$all" => Op::All(scalars(&f, "$all", arg)?),
            "$size" => Op::Size(arg.as_i64().ok_or_else(|| bad_query("$size expects an integer."))?),
            "$exists" => Op::Exists(arg.as_bool().ok_or_else(|| bad_query("$exists expects a boolean."))?),
            "$regex" => Op::Regex {
                pattern: arg.as_str().ok_or_else(|| bad_query("$regex expects a string."))?.to_string(),
                flags: match ops.get("$options") {
                    None => String::new(),
                    Some(o) => o.as_str().ok_or_else(|| bad_query("$options expects a string."))?.to_string(),
                },
            },
            "$options" => continue,
            other => return Err(bad_query(format!("Unsupported query operator '{other}'."))),
        };
        all.push(Filter::Cond(f.clone(), op));
    }
    Ok(if all.len() == 1 { all.remove(0) } else { Filter::And(all) })
}

/// A `where` value: an object of conditions (AND), with `$or`/`$and`, or an array (AND).
pub fn filter(v: &Value) -> LcResult<Filter> {
    match v {
        Value::Array(items) => Ok(Filter::And(items.iter().map(filter).collect::<LcResult<_>>()?)),
        Value::Object(map) => {
            let mut all = Vec::new();
            for (k, cond) in map {
                all.push(match k.as_str() {
                    "$or" | "$and" => {
                        let subs = cond.as_array().ok_or_else(|| bad_query(format!("{k} expects an array.")))?;
                        let subs = subs.iter().map(filter).collect::<LcResult<Vec<_>>>()?;
                        if k == "$or" {
                            Filter::Or(subs)
                        } else {
                            Filter::And(subs)
                        }
                    }
                    // `$relatedTo` and other top-level operators: unsupported (code 1), not a bad key
                    _ if k.starts_with('$') => return Err(bad_query(format!("Unsupported query operator '{k}'."))),
                    _ => condition(field(k)?, cond)?,
                });
            }
            Ok(if all.len() == 1 { all.remove(0) } else { Filter::And(all) })
        }
        _ => Err(bad_query("where must be a JSON object.")),
    }
}

/// `order=field,-field2`: a leading `-` means descending.
pub fn order(s: &str) -> LcResult<Vec<(Field, bool)>> {
    s.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            let (desc, name) = match k.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, k.strip_prefix('+').unwrap_or(k)),
            };
            let f = field(name)?;
            if matches!(f, Field::Members | Field::Muted) {
                return Err(bad_query(format!("Cannot order by '{name}'.")));
            }
            Ok((f, desc))
        })
        .collect()
}

/// The conversation query a request's `where`, `order`, `skip`, `limit` and `count` describe.
pub fn conv_query(p: &Params, kinds: Option<Vec<ConvKind>>) -> LcResult<ConvQuery> {
    let filter = match p.get("where") {
        Some(w) => {
            let v: Value =
                serde_json::from_str(w).map_err(|_| LcError::new(StatusCode::BAD_REQUEST, 107, "Malformed json object in 'where'."))?;
            filter(&v)?
        }
        None => Filter::True,
    };
    let limit = match p.i64("limit")? {
        None => DEFAULT_LIMIT,
        Some(l) if (0..=MAX_LIMIT).contains(&l) => l,
        Some(_) => DEFAULT_LIMIT,
    };
    let skip = p.i64("skip")?.unwrap_or(0);
    if skip < 0 {
        return Err(bad_query("skip must not be negative."));
    }
    Ok(ConvQuery { kinds, filter, order: p.get("order").map(order).transpose()?.unwrap_or_default(), skip, limit, count: p.bool("count")? })
}

/// Check a custom value and put its Dates in canonical form (`…T…:…:….mmmZ`, UTC), so that
/// stored dates compare as strings in time order. Keys may not contain `$` or `.`.
pub fn canonical(v: Value) -> LcResult<Value> {
    if let Some(d) = typed_date(&v) {
        return Ok(serde_json::json!({"__type": "Date", "iso": iso_ms(d?)}));
    }
    Ok(match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                if k.contains('$') || k.contains('.') {
                    return Err(LcError::new(StatusCode::BAD_REQUEST, 121, format!("Invalid key '{k}': keys may not contain '$' or '.'.")));
                }
                out.insert(k, canonical(x)?);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect::<LcResult<_>>()?),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_operators_and_nesting() {
        let f = filter(&json!({"name": "a", "attr.n": {"$gt": 1, "$lt": 5}})).unwrap();
        assert_eq!(
            f,
            Filter::And(vec![
                Filter::Cond(Field::Name, Op::Eq(Scalar::Str("a".into()))),
                Filter::And(vec![
                    Filter::Cond(Field::Custom(vec!["attr".into(), "n".into()]), Op::Gt(Scalar::Int(1))),
                    Filter::Cond(Field::Custom(vec!["attr".into(), "n".into()]), Op::Lt(Scalar::Int(5))),
                ]),
            ])
        );
        let f = filter(&json!({"$or": [{"m": "a"}, {"objectId": "42"}]})).unwrap();
        assert_eq!(
            f,
            Filter::Or(vec![
                Filter::Cond(Field::Members, Op::Eq(Scalar::Str("a".into()))),
                Filter::Cond(Field::Id, Op::Eq(Scalar::Int(42))),
            ])
        );
    }

    #[test]
    fn dates_and_bad_input() {
        let f = filter(&json!({"createdAt": {"$gte": {"__type": "Date", "iso": "2020-05-26T06:42:31.482Z"}}})).unwrap();
        assert_eq!(f, Filter::Cond(Field::CreatedAt, Op::Gte(Scalar::Date(1_590_475_351_482))));
        assert_eq!(filter(&json!({"a-b": 1})).unwrap_err().code, 105);
        assert!(filter(&json!({"x": {"$near": [1, 2]}})).is_err());
        assert!(filter(&json!({"x": {"$in": 3}})).is_err());
        assert!(filter(&json!("name")).is_err());
    }

    #[test]
    fn canonical_dates() {
        let v = canonical(json!({"d": {"__type": "Date", "iso": "2020-05-26T14:42:31.482+08:00"}})).unwrap();
        assert_eq!(v, json!({"d": {"__type": "Date", "iso": "2020-05-26T06:42:31.482Z"}}));
        assert_eq!(canonical(json!({"a": {"$x": 1}})).unwrap_err().code, 121);
    }
}
