//! Entity-independent syntax shared by the run and experiment grammars: splitting a filter
//! into comparisons, MLflow's identifier and quoting rules, Python-literal lists for `IN`,
//! `order_by` clauses, and the Python `repr` formatting MLflow's messages embed.

use super::SearchError;
use super::lexer::{Token, TokenKind, lex};

/// How "Invalid clause(s)" lists the offending tokens: runs quote each one, experiments do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClauseStyle {
    /// `'OR', 'x'` (search_runs).
    Quoted,
    /// `OR, x` (search_experiments).
    Plain,
}

/// The right-hand side of a comparison as written, before any entity-specific checks.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RawValue<'a> {
    /// No value: `IS NULL` / `IS NOT NULL`.
    Absent,
    /// A single- or double-quoted string; `content` is the text between the quotes, verbatim.
    Quoted { raw: &'a str, content: &'a str },
    /// An unquoted numeric literal.
    Number { raw: &'a str },
    /// An unquoted name (`x`, `a.b`, `` `x` ``): MLflow asks for quotes.
    Name { raw: &'a str },
    /// A keyword such as `NULL`, which is neither a string nor a name.
    Keyword { raw: &'a str },
    /// A parenthesised list; `tokens` include both parentheses.
    List { raw: &'a str, tokens: Vec<Token<'a>> },
}

impl<'a> RawValue<'a> {
    /// The value's source text, as MLflow quotes it in error messages.
    pub fn raw(&self) -> &'a str {
        match self {
            RawValue::Absent => "",
            RawValue::Quoted { raw, .. }
            | RawValue::Number { raw }
            | RawValue::Name { raw }
            | RawValue::Keyword { raw }
            | RawValue::List { raw, .. } => raw,
        }
    }
}

/// One comparison as written: identifier text, comparator text and value.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawComparison<'a> {
    /// The identifier's source text, e.g. ``tags.`mlflow.user` ``.
    pub identifier: &'a str,
    /// The comparator, upper-cased and normalised: `=`, `>>`, `LIKE`, `NOT IN`, `IS NULL`.
    pub comparator: String,
    /// The comparator in the caller's letter case (`like`), which some MLflow messages echo.
    pub written: String,
    /// The right-hand side.
    pub value: RawValue<'a>,
}

fn error(message: impl Into<String>) -> SearchError {
    SearchError { message: message.into() }
}

/// Splits a filter string into comparisons joined by `AND`, as MLflow's statement check does:
/// every top-level piece must be a comparison or `AND`; anything else is an invalid clause.
pub(super) fn parse_comparisons(
    filter: &str,
    style: ClauseStyle,
) -> Result<Vec<RawComparison<'_>>, SearchError> {
    let tokens = lex(filter);
    if top_level_semicolon(&tokens).is_some_and(|semicolon| semicolon + 1 < tokens.len()) {
        return Err(error(format!(
            "Search filter contained multiple expression {}. Provide AND-ed expression list.",
            py_repr(filter)
        )));
    }
    let mut comparisons = Vec::new();
    let mut invalid: Vec<&str> = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        if tokens[at].is_keyword("and") {
            at += 1;
        } else if let Some((comparison, next)) = comparison_at(filter, &tokens, at) {
            comparisons.push(comparison);
            at = next;
        } else {
            let end =
                identifier_end(&tokens, at).or_else(|| group_end(&tokens, at)).unwrap_or(at + 1);
            invalid.push(&filter[tokens[at].start..tokens[end - 1].end]);
            at = end;
        }
    }
    if invalid.is_empty() {
        return Ok(comparisons);
    }
    let listed: Vec<String> = match style {
        ClauseStyle::Quoted => invalid.iter().map(|clause| format!("'{clause}'")).collect(),
        ClauseStyle::Plain => invalid.iter().map(|clause| clause.to_string()).collect(),
    };
    Err(error(format!("Invalid clause(s) in filter string: {}", listed.join(", "))))
}

/// The index of the first `;` outside parentheses: where `sqlparse` ends the first statement.
fn top_level_semicolon(tokens: &[Token<'_>]) -> Option<usize> {
    let mut depth = 0usize;
    tokens.iter().position(|token| {
        match token.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        token.kind == TokenKind::Semicolon && depth == 0
    })
}

/// Index just past an identifier starting at `at`: a word, backticked or double-quoted name,
/// followed by `.segment`s written without spaces.
fn identifier_end(tokens: &[Token<'_>], at: usize) -> Option<usize> {
    let first = tokens.get(at)?;
    if !matches!(first.kind, TokenKind::Word | TokenKind::Backticked | TokenKind::DoubleQuoted) {
        return None;
    }
    let mut end = at + 1;
    while let (Some(dot), Some(segment)) = (tokens.get(end), tokens.get(end + 1)) {
        let is_segment = match segment.kind {
            TokenKind::Word
            | TokenKind::Backticked
            | TokenKind::DoubleQuoted
            | TokenKind::SingleQuoted => true,
            TokenKind::Number => !segment.text.starts_with('-'),
            _ => false,
        };
        if dot.kind != TokenKind::Dot || dot.space_before || segment.space_before || !is_segment {
            break;
        }
        end += 2;
    }
    Some(end)
}

/// Index just past the parenthesised group opening at `at`, if it closes.
fn group_end(tokens: &[Token<'_>], at: usize) -> Option<usize> {
    if tokens.get(at)?.kind != TokenKind::LParen {
        return None;
    }
    let mut depth = 0usize;
    for (index, token) in tokens.iter().enumerate().skip(at) {
        match token.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(index + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn comparison_at<'a>(
    filter: &'a str,
    tokens: &[Token<'a>],
    at: usize,
) -> Option<(RawComparison<'a>, usize)> {
    let ident_end = identifier_end(tokens, at)?;
    let identifier = &filter[tokens[at].start..tokens[ident_end - 1].end];
    let op = tokens.get(ident_end)?;
    let word = |offset: usize, keyword: &str| {
        tokens.get(ident_end + offset).is_some_and(|t| t.is_keyword(keyword))
    };
    let like =
        |offset: usize| ["LIKE", "ILIKE", "RLIKE", "REGEXP"].into_iter().find(|k| word(offset, k));
    let (comparator, written, value_at) = if op.kind == TokenKind::Operator {
        (op.text.to_string(), op.text.to_string(), ident_end + 1)
    } else if word(0, "IS") && word(1, "NULL") {
        return Some((absent(identifier, "IS NULL"), ident_end + 2));
    } else if word(0, "IS") && word(1, "NOT") && word(2, "NULL") {
        return Some((absent(identifier, "IS NOT NULL"), ident_end + 3));
    } else if word(0, "IN") {
        return list_comparison(filter, tokens, identifier, "IN", ident_end + 1);
    } else if word(0, "NOT") && word(1, "IN") {
        return list_comparison(filter, tokens, identifier, "NOT IN", ident_end + 2);
    } else if let Some(keyword) = like(0) {
        (keyword.to_string(), op.text.to_string(), ident_end + 1)
    } else if word(0, "NOT") {
        let written = format!("{} {}", op.text, tokens.get(ident_end + 1)?.text);
        (format!("NOT {}", like(1)?), written, ident_end + 2)
    } else {
        return None;
    };
    let (value, next) = value_at_index(filter, tokens, value_at)?;
    Some((RawComparison { identifier, comparator, written, value }, next))
}

fn absent<'a>(identifier: &'a str, comparator: &str) -> RawComparison<'a> {
    normalized(identifier, comparator, RawValue::Absent)
}

fn normalized<'a>(identifier: &'a str, comparator: &str, value: RawValue<'a>) -> RawComparison<'a> {
    let comparator = comparator.to_string();
    RawComparison { identifier, written: comparator.clone(), comparator, value }
}

fn list_comparison<'a>(
    filter: &'a str,
    tokens: &[Token<'a>],
    identifier: &'a str,
    comparator: &str,
    at: usize,
) -> Option<(RawComparison<'a>, usize)> {
    let end = group_end(tokens, at)?;
    let value = list_value(filter, tokens, at, end);
    Some((normalized(identifier, comparator, value), end))
}

fn list_value<'a>(filter: &'a str, tokens: &[Token<'a>], at: usize, end: usize) -> RawValue<'a> {
    RawValue::List {
        raw: &filter[tokens[at].start..tokens[end - 1].end],
        tokens: tokens[at..end].to_vec(),
    }
}

fn value_at_index<'a>(
    filter: &'a str,
    tokens: &[Token<'a>],
    at: usize,
) -> Option<(RawValue<'a>, usize)> {
    let token = tokens.get(at)?;
    let value = match token.kind {
        TokenKind::SingleQuoted | TokenKind::DoubleQuoted => {
            RawValue::Quoted { raw: token.text, content: token.inner() }
        }
        TokenKind::Number => RawValue::Number { raw: token.text },
        TokenKind::LParen => {
            let end = group_end(tokens, at)?;
            return Some((list_value(filter, tokens, at, end), end));
        }
        TokenKind::Word if token.is_keyword("and") => return None,
        TokenKind::Word if token.is_keyword("null") => RawValue::Keyword { raw: token.text },
        TokenKind::Word | TokenKind::Backticked => {
            let end = identifier_end(tokens, at)?;
            let raw = &filter[token.start..tokens[end - 1].end];
            return Some((RawValue::Name { raw }, end));
        }
        _ => return None,
    };
    Some((value, at + 1))
}

/// `len >= 2` and the text starts and ends with `quote` (MLflow's `_is_quoted`).
fn is_quoted(text: &str, quote: char) -> bool {
    text.len() >= 2 && text.starts_with(quote) && text.ends_with(quote)
}

/// Removes one pair of surrounding backticks, if present (MLflow's `_trim_backticks`).
pub(super) fn trim_backticks(text: &str) -> &str {
    if is_quoted(text, '`') { &text[1..text.len() - 1] } else { text }
}

/// Removes one pair of surrounding single or double quotes, if present.
pub(super) fn strip_quotes(text: &str) -> &str {
    if is_quoted(text, '\'') || is_quoted(text, '"') { &text[1..text.len() - 1] } else { text }
}

/// Splits an identifier at its first `.` into entity type and key, as MLflow does on the raw
/// identifier text; `None` for the entity type when there is no dot (a bare attribute).
pub(super) fn split_identifier(identifier: &str) -> (Option<&str>, &str) {
    match identifier.split_once('.') {
        Some((entity, key)) => (Some(entity), key),
        None => (None, identifier),
    }
}

/// The key part of an identifier with its quotes or backticks removed.
pub(super) fn clean_key(key: &str) -> &str {
    trim_backticks(strip_quotes(key))
}

/// MLflow's error for an unquoted name where a string value is expected.
pub(super) fn unquoted_value_error(raw: &str) -> SearchError {
    error(format!(
        "Parameter value is either not quoted or unidentified quote types used for string value \
         {raw}. Use either single or double quotes."
    ))
}

/// A Python literal inside an `IN (...)` list, evaluated like `ast.literal_eval`.
#[derive(Debug, Clone, PartialEq)]
enum PyLiteral {
    Str(String),
    Num(String),
    Tuple(Vec<PyLiteral>),
}

impl PyLiteral {
    fn repr(&self) -> String {
        match self {
            PyLiteral::Str(text) => py_repr(text),
            PyLiteral::Num(text) => text.clone(),
            PyLiteral::Tuple(items) if items.len() == 1 => format!("({},)", items[0].repr()),
            PyLiteral::Tuple(items) => {
                format!("({})", items.iter().map(PyLiteral::repr).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

/// Evaluates a parenthesised list the way MLflow does (`ast.literal_eval` of the group's text),
/// requiring a non-empty tuple of strings.
pub(super) fn eval_string_list(tokens: &[Token<'_>]) -> Result<Vec<String>, SearchError> {
    let mut at = 0;
    let parsed = py_expr(tokens, &mut at).filter(|_| at == tokens.len()).ok_or_else(|| {
        error(
            "While parsing a list in the query, expected a non-empty list of string values, but \
             got ill-formed list.",
        )
    })?;
    let items = match parsed {
        PyLiteral::Tuple(items) => items,
        single => vec![single],
    };
    if items.is_empty() {
        return Err(error(
            "While parsing a list in the query, expected a non-empty list of string values, but \
             got empty list",
        ));
    }
    if items.iter().all(|item| matches!(item, PyLiteral::Str(_))) {
        return Ok(items
            .into_iter()
            .filter_map(|item| match item {
                PyLiteral::Str(text) => Some(text),
                _ => None,
            })
            .collect());
    }
    Err(error(format!(
        "While parsing a list in the query, expected string value, punctuation, or whitespace, \
         but got different type in list: {}",
        PyLiteral::Tuple(items).repr()
    )))
}

fn py_expr(tokens: &[Token<'_>], at: &mut usize) -> Option<PyLiteral> {
    let token = tokens.get(*at)?;
    match token.kind {
        TokenKind::SingleQuoted | TokenKind::DoubleQuoted => {
            let mut text = String::new();
            while let Some(part) = tokens.get(*at).filter(|t| t.is_string()) {
                text.push_str(&py_unescape(part.inner(), part.text.as_bytes()[0] as char));
                *at += 1;
            }
            Some(PyLiteral::Str(text))
        }
        TokenKind::Number => {
            *at += 1;
            Some(PyLiteral::Num(py_number_repr(token.text)))
        }
        TokenKind::LParen => {
            *at += 1;
            if tokens.get(*at)?.kind == TokenKind::RParen {
                *at += 1;
                return Some(PyLiteral::Tuple(Vec::new()));
            }
            let first = py_expr(tokens, at)?;
            if tokens.get(*at)?.kind == TokenKind::RParen {
                *at += 1;
                return Some(first);
            }
            let mut items = vec![first];
            while tokens.get(*at)?.kind == TokenKind::Comma {
                *at += 1;
                if tokens.get(*at)?.kind == TokenKind::RParen {
                    break;
                }
                items.push(py_expr(tokens, at)?);
            }
            (tokens.get(*at)?.kind == TokenKind::RParen).then(|| {
                *at += 1;
                PyLiteral::Tuple(items)
            })
        }
        _ => None,
    }
}

/// Python's reading of a string literal's body: backslash escapes, and a doubled quote
/// (`'it''s'`) read as two adjacent literals that concatenate.
fn py_unescape(content: &str, quote: char) -> String {
    let mut out = String::with_capacity(content.len());
    let mut chars = content.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote {
            chars.next_if_eq(&quote);
            continue;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('a') => out.push('\u{7}'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some('\n') => {}
            Some(escaped @ ('\\' | '\'' | '"')) => out.push(escaped),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// How Python prints the number a literal denotes: integers as integers, floats via `repr`.
fn py_number_repr(raw: &str) -> String {
    if !raw.contains(['.', 'e', 'E']) {
        if let Ok(value) = raw.parse::<i128>() {
            return value.to_string();
        }
        return raw.to_string();
    }
    raw.parse::<f64>().map_or_else(|_| raw.to_string(), py_float_repr)
}

/// Python's `repr` of a float: shortest round-trip digits, scientific notation outside
/// `1e-4 <= |x| < 1e16`, `.0` for whole numbers.
pub(super) fn py_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-4..1e16).contains(&magnitude) {
        let text = value.to_string();
        return if text.contains('.') { text } else { format!("{text}.0") };
    }
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// Python's `repr` of a string.
pub(super) fn py_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr` of a list of strings.
pub(super) fn py_list_repr(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|item| py_repr(item)).collect::<Vec<_>>().join(", "))
}

/// Parses one `order_by` clause, `<identifier> [ASC|DESC]`, into the identifier with its
/// quotes removed (MLflow runs it through `shlex`) and whether it sorts ascending.
pub(super) fn parse_order_clause(clause: &str) -> Result<(String, bool), SearchError> {
    let unparsable = || error(format!("Invalid order_by clause '{clause}'. Could not be parsed."));
    let starts_or_ends_blank = clause.chars().next().is_none_or(char::is_whitespace)
        || clause.chars().next_back().is_some_and(char::is_whitespace);
    if starts_or_ends_blank {
        return Err(unparsable());
    }
    let tokens = lex(clause);
    let end = identifier_end(&tokens, 0).ok_or_else(unparsable)?;
    let ascending = match &tokens[end..] {
        [] => true,
        [direction] if direction.kind == TokenKind::Word && direction.space_before => {
            match direction.text.to_ascii_lowercase().as_str() {
                "asc" => true,
                "desc" => false,
                _ => {
                    return Err(error(format!(
                        "Invalid ordering key in order_by clause '{clause}'."
                    )));
                }
            }
        }
        _ => return Err(unparsable()),
    };
    let identifier = tokens[..end].iter().map(|token| token.inner()).collect();
    Ok((identifier, ascending))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> Result<Vec<String>, String> {
        eval_string_list(&lex(text)).map_err(|e| e.message)
    }

    #[test]
    fn python_lists_evaluate_like_literal_eval() {
        assert_eq!(list("('a','b')").unwrap(), ["a", "b"]);
        assert_eq!(list("('a',)").unwrap(), ["a"]);
        assert_eq!(list("(('a'))").unwrap(), ["a"]);
        assert_eq!(list("(('a','b'))").unwrap(), ["a", "b"]);
        assert_eq!(list("('a', ('b'))").unwrap(), ["a", "b"]);
        assert_eq!(list(r#"("a","b")"#).unwrap(), ["a", "b"]);
        assert_eq!(list("('it''s')").unwrap(), ["its"]);
        assert_eq!(list("('a' 'b')").unwrap(), ["ab"]);
        assert_eq!(list(r"('a\'b', 'c\nd', 'e\q')").unwrap(), ["a'b", "c\nd", "e\\q"]);
        let empty = "While parsing a list in the query, expected a non-empty list of string \
                     values, but got empty list";
        assert_eq!(list("()").unwrap_err(), empty);
        let ill = "While parsing a list in the query, expected a non-empty list of string values, \
                   but got ill-formed list.";
        for bad in ["('a',,'b')", "(`a`)", "(a)", "('a'"] {
            assert_eq!(list(bad).unwrap_err(), ill, "{bad}");
        }
        let typed = "While parsing a list in the query, expected string value, punctuation, or \
                     whitespace, but got different type in list: ";
        assert_eq!(list("(1,2)").unwrap_err(), format!("{typed}(1, 2)"));
        assert_eq!(list("('a', 1)").unwrap_err(), format!("{typed}('a', 1)"));
        assert_eq!(list("(1.5e3)").unwrap_err(), format!("{typed}(1500.0,)"));
        assert_eq!(list("(('a','b'),)").unwrap_err(), format!("{typed}(('a', 'b'),)"));
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py_repr("abc"), "'abc'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_repr("a\\b\n"), "'a\\\\b\\n'");
        assert_eq!(py_list_repr(&["a".into(), "b c".into()]), "['a', 'b c']");
        assert_eq!(py_float_repr(1000.0), "1000.0");
        assert_eq!(py_float_repr(1.5), "1.5");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(1.5e-5), "1.5e-05");
        assert_eq!(py_float_repr(-2.5e300), "-2.5e+300");
        assert_eq!(py_float_repr(f64::INFINITY), "inf");
        assert_eq!(py_number_repr("007"), "7");
    }

    #[test]
    fn identifiers_split_like_mlflow() {
        assert_eq!(split_identifier("tags.a.b"), (Some("tags"), "a.b"));
        assert_eq!(split_identifier("`tags.a`"), (Some("`tags"), "a`"));
        assert_eq!(split_identifier("status"), (None, "status"));
        assert_eq!(clean_key("`a b`"), "a b");
        assert_eq!(clean_key("\"a b\""), "a b");
        assert_eq!(clean_key("'a'"), "a");
        assert_eq!(clean_key("`a"), "`a");
    }

    #[test]
    fn order_clauses() {
        assert_eq!(parse_order_clause("metrics.acc").unwrap(), ("metrics.acc".into(), true));
        assert_eq!(parse_order_clause("metrics.acc  desc").unwrap(), ("metrics.acc".into(), false));
        assert_eq!(
            parse_order_clause("metrics.`val loss`\tASC").unwrap(),
            ("metrics.val loss".into(), true)
        );
        assert_eq!(parse_order_clause("`metrics.a`").unwrap(), ("metrics.a".into(), true));
        for bad in ["", " a", "a ", "a DESC x", "a > 1", "a, b", "'a'", "a DESC NULLS LAST"] {
            assert_eq!(
                parse_order_clause(bad).unwrap_err().message,
                format!("Invalid order_by clause '{bad}'. Could not be parsed."),
                "{bad}"
            );
        }
        assert_eq!(
            parse_order_clause("a UP").unwrap_err().message,
            "Invalid ordering key in order_by clause 'a UP'."
        );
    }
}
