//! SQL functions the store's queries use.

use std::cell::RefCell;
use std::collections::HashMap;

use confab_engine::query::compile_regex;
use regex::Regex;
use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

thread_local! {
    static CACHE: RefCell<HashMap<(String, String), Option<Regex>>> = RefCell::new(HashMap::new());
}

/// `regexp_match(pattern, flags, text)`: 1 if `text` matches, 0 if not (or not text).
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function("regexp_match", 3, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        let pattern: String = ctx.get(0)?;
        let flags: String = ctx.get(1)?;
        let text: Option<String> = ctx.get::<Option<String>>(2).unwrap_or(None);
        let Some(text) = text else { return Ok(false) };
        Ok(CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() > 256 {
                c.clear();
            }
            let re = c.entry((pattern.clone(), flags.clone())).or_insert_with(|| compile_regex(&pattern, &flags).ok());
            re.as_ref().is_some_and(|re| re.is_match(&text))
        }))
    })
}
