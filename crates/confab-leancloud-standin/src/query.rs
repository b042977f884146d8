//! A small part of LeanCloud's `where` language, enough for importers and tests: equality (an
//! array field matches when it contains the value), `$ne`, `$lt`, `$lte`, `$gt`, `$gte`, `$in`,
//! `$nin`, `$all`, `$size`, `$exists`, `$or`, `$and`, a top-level array as an implicit `$and`, and
//! `Date` values (`createdAt` / `updatedAt`, plain strings in rows, compare as dates).

use std::cmp::Ordering;

use serde_json::Value;

/// Parse a `where` parameter; `Err` is the message of LeanCloud's 107 error.
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Ok(v),
        _ => Err("Malformed json object. A json dictionary is expected.".into()),
    }
}

/// Does `row` satisfy `cond`? Unknown operators are an error.
pub(crate) fn matches(row: &Value, cond: &Value) -> Result<bool, String> {
    match cond {
        Value::Array(all) => {
            for c in all {
                if !matches(row, c)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Value::Object(map) => {
            for (k, v) in map {
                let ok = match k.as_str() {
                    "$or" => {
                        let mut any = false;
                        for c in v.as_array().ok_or("$or takes an array")? {
                            if matches(row, c)? {
                                any = true;
                                break;
                            }
                        }
                        any
                    }
                    "$and" => matches(row, &Value::Array(v.as_array().ok_or("$and takes an array")?.clone()))?,
                    field => field_matches(row.get(field), v)?,
                };
                if !ok {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        _ => Err("Malformed json object. A json dictionary is expected.".into()),
    }
}

/// A comparable form: numbers, strings, booleans; `Date` objects as their ISO string.
fn scalar(v: &Value) -> &Value {
    match v {
        Value::Object(m) if m.get("__type").and_then(Value::as_str) == Some("Date") => m.get("iso").unwrap_or(v),
        _ => v,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (scalar(a), scalar(b)) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn equal(field: Option<&Value>, v: &Value) -> bool {
    match field {
        None => v.is_null(),
        Some(Value::Array(items)) if !v.is_array() => items.iter().any(|i| compare(i, v) == Some(Ordering::Equal) || i == v),
        Some(f) => compare(f, v) == Some(Ordering::Equal) || scalar(f) == scalar(v),
    }
}

fn is_operator_object(v: &Value) -> bool {
    v.as_object().is_some_and(|m| !m.is_empty() && m.keys().all(|k| k.starts_with('$')))
}

fn field_matches(field: Option<&Value>, cond: &Value) -> Result<bool, String> {
    if !is_operator_object(cond) {
        return Ok(equal(field, cond));
    }
    for (op, arg) in cond.as_object().into_iter().flatten() {
        let ok = match op.as_str() {
            "$ne" => !equal(field, arg),
            "$lt" | "$lte" | "$gt" | "$gte" => match field.and_then(|f| compare(f, arg)) {
                None => false,
                Some(o) => match op.as_str() {
                    "$lt" => o == Ordering::Less,
                    "$lte" => o != Ordering::Greater,
                    "$gt" => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                },
            },
            "$in" => arg.as_array().ok_or("$in takes an array")?.iter().any(|a| equal(field, a)),
            "$nin" => !arg.as_array().ok_or("$nin takes an array")?.iter().any(|a| equal(field, a)),
            "$all" => arg.as_array().ok_or("$all takes an array")?.iter().all(|a| equal(field, a)),
            "$size" => field.and_then(Value::as_array).map(|a| a.len() as u64) == arg.as_u64(),
            "$exists" => field.is_some() == arg.as_bool().ok_or("$exists takes a boolean")?,
            other => return Err(format!("Unsupported query operator {other}.")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn where_clauses() {
        let row = json!({"objectId": "b", "m": ["tom", "jerry"], "tr": true, "n": 3,
            "lm": {"__type": "Date", "iso": "2024-03-01T00:00:00.000Z"}, "createdAt": "2024-03-01T00:00:00.000Z"});
        let yes = |c: Value| assert!(matches(&row, &c).unwrap(), "{c}");
        let no = |c: Value| assert!(!matches(&row, &c).unwrap(), "{c}");
        yes(json!({"m": "tom"}));
        no(json!({"m": "spike"}));
        yes(json!({"tr": true, "n": {"$gte": 3, "$lt": 4}}));
        no(json!({"sys": true}));
        yes(json!({"sys": {"$exists": false}}));
        yes(json!({"objectId": {"$in": ["a", "b"]}}));
        yes(json!({"objectId": {"$gt": "a"}}));
        yes(json!({"$or": [{"n": 1}, {"m": {"$all": ["tom", "jerry"]}}]}));
        yes(json!({"m": {"$size": 2}}));
        yes(json!({"createdAt": {"$gte": {"__type": "Date", "iso": "2024-01-01T00:00:00.000Z"}}}));
        no(json!({"lm": {"$lt": {"__type": "Date", "iso": "2024-01-01T00:00:00.000Z"}}}));
        yes(json!([{"n": 3}, {"tr": true}]));
        assert!(matches(&row, &json!({"n": {"$near": 1}})).is_err());
        assert!(parse("{").is_err() && parse("3").is_err());
    }
}
