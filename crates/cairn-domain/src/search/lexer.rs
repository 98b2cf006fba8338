//! A small hand-written lexer for MLflow's search filter and `order_by` strings.
//!
//! MLflow tokenizes these strings with `sqlparse`; this lexer reproduces the parts of
//! `sqlparse`'s tokenization that matter for the search grammar: quoted strings and names
//! (with `sqlparse`'s doubled-quote and backslash rules), numbers, words, comparison operator
//! runs and punctuation. Anything else becomes a one-character [`TokenKind::Other`] token so the
//! parser can report it as an invalid clause, the way MLflow does.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// A run of word characters (letters, digits, `_`), e.g. `metrics`, `AND`, `1a`.
    Word,
    /// A numeric literal: `1`, `-2`, `0.5`, `.5`, `5.`, `1e-3`.
    Number,
    /// A single-quoted string: `'value'`.
    SingleQuoted,
    /// A double-quoted string or name: `"value"`.
    DoubleQuoted,
    /// A backtick-quoted name: `` `mlflow.user` ``.
    Backticked,
    /// A run of the comparison characters `<>=~!`, e.g. `>=` or the invalid `>>`.
    Operator,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `.`.
    Dot,
    /// `;`.
    Semicolon,
    /// A `--` comment running to the end of the line.
    Comment,
    /// Any other single character, including an unterminated quote.
    Other,
}

/// One token: its kind, its source text and where it sits in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token<'a> {
    /// What the token is.
    pub kind: TokenKind,
    /// The token's exact source text (quotes included for quoted tokens).
    pub text: &'a str,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
    /// Whether whitespace (or the start of the input) precedes the token.
    pub space_before: bool,
}

impl<'a> Token<'a> {
    /// The text between the quotes of a quoted token; the whole text for other tokens.
    pub fn inner(&self) -> &'a str {
        match self.kind {
            TokenKind::SingleQuoted | TokenKind::DoubleQuoted | TokenKind::Backticked => {
                &self.text[1..self.text.len() - 1]
            }
            _ => self.text,
        }
    }

    /// Whether this is a word equal to `keyword`, ignoring ASCII case.
    pub fn is_keyword(&self, keyword: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    /// Whether this is a quoted string value (single or double quotes).
    pub fn is_string(&self) -> bool {
        matches!(self.kind, TokenKind::SingleQuoted | TokenKind::DoubleQuoted)
    }
}

/// Whether `c` is a word character (Python's `\w`, approximately).
pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `input` into tokens, dropping whitespace.
pub(super) fn lex(input: &str) -> Vec<Token<'_>> {
    Lexer { input, bytes: input.as_bytes(), pos: 0, tokens: Vec::new(), space_before: true }.run()
}

struct Lexer<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
    tokens: Vec<Token<'a>>,
    space_before: bool,
}

impl<'a> Lexer<'a> {
    fn run(mut self) -> Vec<Token<'a>> {
        while let Some(c) = self.peek_char(self.pos) {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
                self.space_before = true;
                continue;
            }
            let start = self.pos;
            let (kind, end) = self.next_token(c, start);
            self.push(kind, start, end);
        }
        self.tokens
    }

    fn next_token(&self, c: char, start: usize) -> (TokenKind, usize) {
        match c {
            '-' if self.byte(start + 1) == Some(b'-') => (TokenKind::Comment, self.line_end(start)),
            '\'' | '"' | '`' => match scan_quoted(self.bytes, start, c as u8) {
                Some(end) => (quoted_kind(c), end),
                None => (TokenKind::Other, start + 1),
            },
            '(' => (TokenKind::LParen, start + 1),
            ')' => (TokenKind::RParen, start + 1),
            ',' => (TokenKind::Comma, start + 1),
            ';' => (TokenKind::Semicolon, start + 1),
            '<' | '>' | '=' | '~' | '!' => {
                let mut end = start;
                while matches!(self.byte(end), Some(b'<' | b'>' | b'=' | b'~' | b'!')) {
                    end += 1;
                }
                (TokenKind::Operator, end)
            }
            _ => {
                if let Some(end) = self.scan_number(start) {
                    return (TokenKind::Number, end);
                }
                if c == '.' {
                    return (TokenKind::Dot, start + 1);
                }
                if is_word_char(c) {
                    return (TokenKind::Word, self.word_end(start));
                }
                (TokenKind::Other, start + c.len_utf8())
            }
        }
    }

    fn push(&mut self, kind: TokenKind, start: usize, end: usize) {
        self.tokens.push(Token {
            kind,
            text: &self.input[start..end],
            start,
            end,
            space_before: self.space_before,
        });
        self.space_before = false;
        self.pos = end;
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    fn peek_char(&self, at: usize) -> Option<char> {
        self.input.get(at..).and_then(|rest| rest.chars().next())
    }

    fn is_digit_at(&self, at: usize) -> bool {
        self.byte(at).is_some_and(|b| b.is_ascii_digit())
    }

    fn line_end(&self, start: usize) -> usize {
        self.input[start..].find(['\r', '\n']).map_or(self.input.len(), |offset| start + offset)
    }

    fn word_end(&self, start: usize) -> usize {
        let mut end = start;
        while let Some(c) = self.peek_char(end).filter(|c| is_word_char(*c)) {
            end += c.len_utf8();
        }
        end
    }

    /// Whether a `.` at the current position continues a name (`metrics.1a`, `` `a`.b ``).
    fn dot_continues_name(&self) -> bool {
        !self.space_before
            && self.tokens.last().is_some_and(|t| {
                matches!(
                    t.kind,
                    TokenKind::Word
                        | TokenKind::Backticked
                        | TokenKind::DoubleQuoted
                        | TokenKind::SingleQuoted
                )
            })
    }

    /// Scans a numeric literal at `start`; `None` if there is none, or if it runs straight
    /// into word characters (`1e`, `1_000`), which `sqlparse` lexes as a name.
    fn scan_number(&self, start: usize) -> Option<usize> {
        let mut end = start;
        if self.byte(end) == Some(b'-') {
            end += 1;
        }
        if self.is_digit_at(end) {
            while self.is_digit_at(end) {
                end += 1;
            }
            if self.byte(end) == Some(b'.') {
                end += 1;
                while self.is_digit_at(end) {
                    end += 1;
                }
            }
        } else if self.byte(end) == Some(b'.') && self.is_digit_at(end + 1) {
            if end == start && self.dot_continues_name() {
                return None;
            }
            end += 1;
            while self.is_digit_at(end) {
                end += 1;
            }
        } else {
            return None;
        }
        if matches!(self.byte(end), Some(b'e' | b'E')) {
            let mut exponent = end + 1;
            if matches!(self.byte(exponent), Some(b'+' | b'-')) {
                exponent += 1;
            }
            if self.is_digit_at(exponent) {
                end = exponent;
                while self.is_digit_at(end) {
                    end += 1;
                }
            }
        }
        match self.peek_char(end) {
            Some(c) if is_word_char(c) => None,
            _ => Some(end),
        }
    }
}

fn quoted_kind(quote: char) -> TokenKind {
    match quote {
        '\'' => TokenKind::SingleQuoted,
        '"' => TokenKind::DoubleQuoted,
        _ => TokenKind::Backticked,
    }
}

/// Finds the end of a quoted token opening at `start`, following `sqlparse`'s regexes
/// (`'(''|\\'|[^'])*'`, the same for `"`, and `` `(``|[^`])*` `` without backslashes).
///
/// The regex is greedy with backtracking: a doubled quote or a backslash-escaped quote is
/// consumed as content, but if the literal then never closes, the last such place is where it
/// closes instead. Returns the byte offset just past the closing quote.
fn scan_quoted(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
    let backslash_escapes = quote != b'`';
    let mut fallback = None;
    let mut at = start + 1;
    while let Some(&b) = bytes.get(at) {
        if b == quote {
            if bytes.get(at + 1) == Some(&quote) {
                fallback = Some(at + 1);
                at += 2;
                continue;
            }
            return Some(at + 1);
        }
        if backslash_escapes && b == b'\\' && bytes.get(at + 1) == Some(&quote) {
            fallback = Some(at + 2);
            at += 2;
            continue;
        }
        at += 1;
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<(TokenKind, &str)> {
        lex(input).into_iter().map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn lexes_a_simple_comparison() {
        use TokenKind::*;
        assert_eq!(
            kinds("metrics.acc>=0.5 and tags.`a b` LIKE 'x%'"),
            vec![
                (Word, "metrics"),
                (Dot, "."),
                (Word, "acc"),
                (Operator, ">="),
                (Number, "0.5"),
                (Word, "and"),
                (Word, "tags"),
                (Dot, "."),
                (Backticked, "`a b`"),
                (Word, "LIKE"),
                (SingleQuoted, "'x%'"),
            ]
        );
    }

    #[test]
    fn numbers_follow_sqlparse() {
        use TokenKind::*;
        for number in ["1", "-1", "0.5", ".5", "5.", "1e5", "1.5e-3", "-2.5E+2"] {
            assert_eq!(kinds(number), vec![(Number, number)], "{number}");
        }
        assert_eq!(kinds("1e"), vec![(Word, "1e")]);
        assert_eq!(kinds("1_000"), vec![(Word, "1_000")]);
        assert_eq!(kinds("1.2.3"), vec![(Number, "1.2"), (Number, ".3")]);
        assert_eq!(kinds("params.1a"), vec![(Word, "params"), (Dot, "."), (Word, "1a")]);
        assert_eq!(kinds("metrics.123"), vec![(Word, "metrics"), (Dot, "."), (Number, "123")]);
    }

    #[test]
    fn quoted_tokens_keep_their_raw_text() {
        use TokenKind::*;
        assert_eq!(kinds("'it''s'"), vec![(SingleQuoted, "'it''s'")]);
        assert_eq!(kinds(r"'it\'s'"), vec![(SingleQuoted, r"'it\'s'")]);
        assert_eq!(kinds(r#""a""b""#), vec![(DoubleQuoted, r#""a""b""#)]);
        assert_eq!(kinds("`a``b`"), vec![(Backticked, "`a``b`")]);
        // Backtracking: an escaped quote at the very end closes the literal.
        assert_eq!(kinds(r"'a\'"), vec![(SingleQuoted, r"'a\'")]);
        assert_eq!(kinds("'a''"), vec![(SingleQuoted, "'a'"), (Other, "'")]);
        assert_eq!(kinds("'open"), vec![(Other, "'"), (Word, "open")]);
        assert_eq!(lex("'ab'")[0].inner(), "ab");
    }

    #[test]
    fn operators_comments_and_others() {
        use TokenKind::*;
        assert_eq!(kinds("a >> 1"), vec![(Word, "a"), (Operator, ">>"), (Number, "1")]);
        assert_eq!(kinds("x -- note\ny"), vec![(Word, "x"), (Comment, "-- note"), (Word, "y")]);
        assert_eq!(kinds("+ ; é"), vec![(Other, "+"), (Semicolon, ";"), (Word, "é")]);
        let tokens = lex("a .b");
        assert!(tokens[1].space_before && !tokens[2].space_before);
    }
}
