//! Query-string parameters, read the same way by every face; each face answers a parameter it
//! cannot use in its own error format ([`ParamRejection`]).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::ops::RangeInclusive;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::response::IntoResponse;

/// How a face answers a query string or a parameter it cannot use.
pub trait ParamRejection: IntoResponse + Sized {
    /// The query string does not parse; `text` says why.
    fn malformed(text: String) -> Self;
    /// Parameter `key` is not `expected` ("an integer", "a boolean", "an integer in 1..=100").
    fn wrong_type(key: &str, expected: &str) -> Self;
}

/// Query-string parameters; `E` is the face's error.
pub struct Params<E> {
    map: HashMap<String, String>,
    face: PhantomData<fn() -> E>,
}

impl<S: Send + Sync, E: ParamRejection> FromRequestParts<S> for Params<E> {
    type Rejection = E;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, E> {
        let Query(map) = Query::<HashMap<String, String>>::try_from_uri(&parts.uri).map_err(|e| E::malformed(e.body_text()))?;
        Ok(Params::new(map))
    }
}

impl<E: ParamRejection> Params<E> {
    pub fn new(map: HashMap<String, String>) -> Self {
        Params { map, face: PhantomData }
    }

    /// A parameter as sent, empty or not.
    pub fn raw(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }

    /// A parameter that is present and not empty (`?limit=` is no limit).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.raw(k).filter(|v| !v.is_empty())
    }

    /// An integer parameter (spaces around it allowed), `None` when absent.
    pub fn i64(&self, k: &str) -> Result<Option<i64>, E> {
        self.get(k).map(|v| v.trim().parse().map_err(|_| E::wrong_type(k, "an integer"))).transpose()
    }

    /// An integer parameter within `range`, or `default` when absent.
    pub fn int(&self, k: &str, default: i64, range: RangeInclusive<i64>) -> Result<i64, E> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| E::wrong_type(k, &format!("an integer in {}..={}", range.start(), range.end()))),
        }
    }

    /// A boolean parameter (`true`/`1`, `false`/`0`), false when absent.
    pub fn bool(&self, k: &str) -> Result<bool, E> {
        match self.get(k) {
            None => Ok(false),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(_) => Err(E::wrong_type(k, "a boolean")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct E(String);
    impl IntoResponse for E {
        fn into_response(self) -> axum::response::Response {
            self.0.into_response()
        }
    }
    impl ParamRejection for E {
        fn malformed(text: String) -> Self {
            E(text)
        }
        fn wrong_type(key: &str, expected: &str) -> Self {
            E(format!("{key}: {expected}"))
        }
    }

    #[test]
    fn typed_parameters_and_the_faces_error() {
        let q = Params::<E>::new([("n", " 5 "), ("e", ""), ("b", "1"), ("x", "y")].map(|(k, v)| (k.into(), v.into())).into());
        assert_eq!(q.raw("e"), Some(""));
        assert_eq!(q.get("e"), None, "empty is absent");
        assert_eq!(q.i64("n"), Ok(Some(5)));
        assert_eq!(q.i64("e"), Ok(None));
        assert_eq!(q.i64("x"), Err(E("x: an integer".into())));
        assert_eq!(q.int("n", 1, 1..=4), Err(E("n: an integer in 1..=4".into())));
        assert_eq!(q.int("missing", 3, 1..=4), Ok(3));
        assert_eq!(q.bool("b"), Ok(true));
        assert_eq!(q.bool("missing"), Ok(false));
        assert_eq!(q.bool("x"), Err(E("x: a boolean".into())));
    }
}
