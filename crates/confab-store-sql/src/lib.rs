//! What the two SQL stores (SQLite, PostgreSQL) share about the engine's conversation queries
//! (`confab_engine::query`): which column or test each field is ([`target`]), which values a
//! built-in column can meet ([`fits`]: comparisons are type-strict), and the walk of a filter's
//! tree with a conversation id's two spellings ([`compile`]). The SQL of each leaf is the store's
//! own dialect ([`Dialect`]); the rules above are written once, here.
#![forbid(unsafe_code)]

use confab_engine::model::ConvKind;
use confab_engine::query::{Field, Filter, Op, Scalar};
use confab_engine::{Error, Result};

/// What a built-in column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    Text,
    /// Integers: ids, flags and times in ms.
    Number,
}

/// A boolean field of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// The conversation is of this kind (`tr`, `sys`, `temporary`).
    Kind(ConvKind),
    /// A unique conversation (`unique`).
    Unique,
}

/// What a query field reads, on conversations aliased `c`.
#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Column(&'static str, ColType),
    Flag(Flag),
    /// The members (`m`), or those who turned notifications off (`mu`).
    Members {
        notifications_off: bool,
    },
    /// A custom field: its path into the conversation's attributes, each key checked so that a
    /// store may inline it.
    Custom(&'a [String]),
}

/// The target of a field; an error for a custom field name no store accepts.
pub fn target(f: &Field) -> Result<Target<'_>> {
    Ok(match f {
        Field::Id => Target::Column("c.id", ColType::Number),
        Field::Name => Target::Column("c.name", ColType::Text),
        Field::Creator => Target::Column("c.creator", ColType::Text),
        Field::Transient => Target::Flag(Flag::Kind(ConvKind::Chatroom)),
        Field::System => Target::Flag(Flag::Kind(ConvKind::Service)),
        Field::Temporary => Target::Flag(Flag::Kind(ConvKind::Temporary)),
        Field::Unique => Target::Flag(Flag::Unique),
        Field::UniqueId => Target::Column("c.unique_id", ColType::Text),
        Field::Members => Target::Members { notifications_off: false },
        Field::Muted => Target::Members { notifications_off: true },
        Field::CreatedAt => Target::Column("c.created_at", ColType::Number),
        Field::UpdatedAt => Target::Column("c.updated_at", ColType::Number),
        Field::LastMessageAt => Target::Column("c.last_message_at", ColType::Number),
        Field::ParentConv => Target::Column("c.parent_conv", ColType::Number),
        Field::ParentMsg => Target::Column("c.parent_msg", ColType::Number),
        Field::Custom(path) => Target::Custom(checked_path(path)?),
    })
}

/// A custom field's path, its keys free of what could break out of an inlined JSON path.
fn checked_path(path: &[String]) -> Result<&[String]> {
    if path.is_empty() {
        return Err(Error::invalid("empty field name"));
    }
    for key in path {
        if key.is_empty() || key.chars().any(|c| c.is_control() || "'\"\\.[]$".contains(c)) {
            return Err(Error::invalid(format!("invalid field name '{key}'")));
        }
    }
    Ok(path)
}

/// Whether a value can equal or order against a built-in column of this type. Comparisons are
/// type-strict: a number never equals a string (SQLite's column affinity would otherwise turn
/// `5` into `'5'`), and a boolean meets no built-in column.
pub fn fits(ty: ColType, v: &Scalar) -> bool {
    match v {
        Scalar::Str(_) => ty == ColType::Text,
        Scalar::Int(_) | Scalar::Float(_) | Scalar::Date(_) => ty == ColType::Number,
        Scalar::Bool(_) => false,
        Scalar::Null | Scalar::Json(_) => true,
    }
}

/// The SQL operator of an ordering comparison (`=` for the rest).
pub fn cmp_sym(op: &Op) -> &'static str {
    match op {
        Op::Lt(_) => "<",
        Op::Lte(_) => "<=",
        Op::Gt(_) => ">",
        Op::Gte(_) => ">=",
        _ => "=",
    }
}

/// A store's SQL for the leaves of a filter.
pub trait Dialect {
    /// A boolean expression that always holds, and one that never does.
    const TRUE: &'static str;
    const FALSE: &'static str;
    fn push(&mut self, sql: &str);
    fn column(&mut self, col: &'static str, ty: ColType, op: &Op) -> Result<()>;
    fn flag(&mut self, flag: Flag, op: &Op) -> Result<()>;
    fn members(&mut self, field: &Field, notifications_off: bool, op: &Op) -> Result<()>;
    fn custom(&mut self, path: &[String], op: &Op) -> Result<()>;
}

/// Compile a filter into a boolean SQL expression on conversations aliased `c`.
pub fn compile<D: Dialect>(f: &Filter, d: &mut D) -> Result<()> {
    match f {
        Filter::True => d.push(D::TRUE),
        Filter::And(fs) | Filter::Or(fs) => {
            let and = matches!(f, Filter::And(_));
            if fs.is_empty() {
                d.push(if and { D::TRUE } else { D::FALSE });
                return Ok(());
            }
            d.push("(");
            for (i, sub) in fs.iter().enumerate() {
                if i > 0 {
                    d.push(if and { " AND " } else { " OR " });
                }
                compile(sub, d)?;
            }
            d.push(")");
        }
        Filter::Cond(Field::Id, op) => object_id(op, d)?,
        Filter::Cond(field, op) => match target(field)? {
            Target::Column(col, ty) => d.column(col, ty, op)?,
            Target::Flag(flag) => d.flag(flag, op)?,
            Target::Members { notifications_off } => d.members(field, notifications_off, op)?,
            Target::Custom(path) => d.custom(path, op)?,
        },
    }
    Ok(())
}

/// A conversation's id as a client names it: confab's number, or the foreign id (a string) an
/// imported one kept. Equality and membership look in the column the value's type names (both
/// indexed); other comparisons are on confab's number.
fn object_id<D: Dialect>(op: &Op, d: &mut D) -> Result<()> {
    let foreign = |v: &Scalar| matches!(v, Scalar::Str(_));
    match op {
        Op::Eq(v) | Op::Ne(v) if foreign(v) => d.column("c.foreign_id", ColType::Text, op),
        Op::In(vs) | Op::Nin(vs) if vs.iter().any(foreign) => {
            let (strs, nums): (Vec<Scalar>, Vec<Scalar>) = vs.iter().cloned().partition(foreign);
            let (negate, rebuild): (bool, fn(Vec<Scalar>) -> Op) = match op {
                Op::Nin(_) => (true, Op::Nin),
                _ => (false, Op::In),
            };
            d.push("(");
            d.column("c.id", ColType::Number, &rebuild(nums))?;
            d.push(if negate { " AND " } else { " OR " });
            d.column("c.foreign_id", ColType::Text, &rebuild(strs))?;
            d.push(")");
            Ok(())
        }
        _ => d.column("c.id", ColType::Number, op),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_field_names_are_refused() {
        for bad in ["a'b", "a\"b", "a.b", "$x", "", "a\u{1}"] {
            assert!(target(&Field::Custom(vec![bad.into()])).is_err(), "{bad:?}");
        }
        assert!(target(&Field::Custom(vec![])).is_err());
        let ok = vec!["ok_name".to_string(), "x1".to_string()];
        assert_eq!(target(&Field::Custom(ok.clone())).unwrap(), Target::Custom(&ok));
    }

    #[test]
    fn built_in_columns_are_type_strict() {
        assert!(fits(ColType::Text, &Scalar::Str("5".into())));
        assert!(!fits(ColType::Text, &Scalar::Int(5)));
        assert!(!fits(ColType::Number, &Scalar::Str("5".into())));
        assert!(!fits(ColType::Number, &Scalar::Bool(true)));
        assert!(fits(ColType::Number, &Scalar::Null));
    }
}
