//! A small SQL builder for dynamic queries: text plus numbered `$n` placeholders, which both
//! SQLite and PostgreSQL accept, and the owned arguments to bind in order.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row};

use crate::Dialect;

/// One bind argument.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Text(String),
    /// A NULL string.
    NullText,
    /// A NULL integer.
    NullInt,
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}

impl From<f64> for Arg {
    fn from(value: f64) -> Self {
        Arg::Float(value)
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Arg::Text(value.to_string())
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Arg::Text(value)
    }
}

impl From<&String> for Arg {
    fn from(value: &String) -> Self {
        Arg::Text(value.clone())
    }
}

impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Self {
        value.map_or(Arg::NullText, Arg::Text)
    }
}

impl From<Option<&str>> for Arg {
    fn from(value: Option<&str>) -> Self {
        value.map_or(Arg::NullText, |text| Arg::Text(text.to_string()))
    }
}

impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Self {
        value.map_or(Arg::NullInt, Arg::Int)
    }
}

/// SQL text under construction with its arguments.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sql {
    /// The statement text.
    pub text: String,
    /// The arguments, bound as `$1`, `$2`… in order.
    pub args: Vec<Arg>,
}

impl Sql {
    /// Starts a statement with the given text.
    pub fn new(text: &str) -> Self {
        Self { text: text.to_string(), args: Vec::new() }
    }

    /// Appends raw SQL text (never user input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value` and records the argument.
    pub fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends `(p1, p2, …)` for a list of values.
    pub fn bind_list<T: Into<Arg>>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self {
        self.text.push('(');
        for (index, value) in values.into_iter().enumerate() {
            if index > 0 {
                self.text.push_str(", ");
            }
            self.bind(value);
        }
        self.text.push(')');
        self
    }

    /// Builds the sqlx query with every argument bound. On SQLite the numbered placeholders
    /// become anonymous `?`s (the arguments are in textual order): SQLite resolves named
    /// parameters with a linear scan per parameter, which makes a 4,500-parameter batch insert
    /// quadratic.
    pub fn query(self, dialect: Dialect) -> Query<'static, Any, AnyArguments> {
        let text = match dialect {
            Dialect::Postgres => self.text,
            Dialect::Sqlite => anonymous_placeholders(&self.text),
        };
        let mut query = sqlx::query(AssertSqlSafe(text));
        for arg in self.args {
            query = match arg {
                Arg::Int(value) => query.bind(value),
                Arg::Float(value) => query.bind(value),
                Arg::Text(value) => query.bind(value),
                Arg::NullText => query.bind(Option::<String>::None),
                Arg::NullInt => query.bind(Option::<i64>::None),
            };
        }
        query
    }
}

/// Replaces every `$<digits>` with `?`. The builder never writes a `$` anywhere else.
fn anonymous_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        if character == '$' && characters.peek().is_some_and(char::is_ascii_digit) {
            while characters.peek().is_some_and(char::is_ascii_digit) {
                characters.next();
            }
            out.push('?');
        } else {
            out.push(character);
        }
    }
    out
}

/// Reads a nullable text column.
pub(crate) fn opt_text(row: &AnyRow, column: &str) -> sqlx::Result<Option<String>> {
    row.try_get::<Option<String>, _>(column)
}

/// Reads a float column, tolerating integers stored by SQLite for whole numbers.
pub(crate) fn float(row: &AnyRow, column: &str) -> sqlx::Result<f64> {
    match row.try_get::<f64, _>(column) {
        Ok(value) => Ok(value),
        Err(float_error) => {
            row.try_get::<i64, _>(column).map(|integer| integer as f64).map_err(|_| float_error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_binding_order() {
        let mut sql = Sql::new("SELECT * FROM t WHERE a = ");
        sql.bind(1_i64).push(" AND b IN ").bind_list(["x", "y"]).push(" AND c = 'price: $'");
        assert_eq!(sql.text, "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3) AND c = 'price: $'");
        assert_eq!(
            anonymous_placeholders(&sql.text),
            "SELECT * FROM t WHERE a = ? AND b IN (?, ?) AND c = 'price: $'"
        );
        assert_eq!(sql.args.len(), 3);
    }
}
