//! Markdown rendered safely for pages (a project's README): CommonMark with tables and
//! strikethrough through `pulldown-cmark`, where no raw HTML passes through (HTML blocks and
//! inline HTML are shown as text), links keep only `http`, `https`, `mailto` and relative
//! targets (others become plain text), images become their alt text (pages load no outside
//! resources), and headings move down by [`HEADING_SHIFT`] levels so they sit under the page's
//! own `<h1>` and section `<h2>`.

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Levels a README's headings move down (`#` becomes `<h3>`).
const HEADING_SHIFT: usize = 2;
/// Schemes a link may use (anything without a scheme is relative, hence same-origin).
const SAFE_SCHEMES: &[&str] = &["http", "https", "mailto"];

/// Whether a link target is safe to follow: relative, or one of [`SAFE_SCHEMES`]. Browsers
/// ignore ASCII whitespace and control characters inside a scheme, so those are dropped before
/// the check (`java\tscript:` is `javascript:`).
pub fn safe_link(target: &str) -> bool {
    let cleaned: String =
        target.chars().filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control()).collect();
    let end = cleaned.find(['/', '?', '#']).unwrap_or(cleaned.len());
    match cleaned[..end].split_once(':') {
        None => true,
        Some((scheme, _)) => SAFE_SCHEMES.iter().any(|safe| scheme.eq_ignore_ascii_case(safe)),
    }
}

fn shifted(level: HeadingLevel) -> HeadingLevel {
    let number = (level as usize + HEADING_SHIFT).min(6);
    HeadingLevel::try_from(number).unwrap_or(HeadingLevel::H6)
}

/// Renders `source` as HTML that is safe to include in a page unescaped.
pub fn render(source: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    // Inside a refused link or an image, its end tag is dropped too.
    let mut dropped_ends: Vec<bool> = Vec::new();
    let events = Parser::new_ext(source, options).filter_map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        Event::Start(Tag::Heading { level, id, classes, attrs }) => {
            let _ = (id, classes, attrs);
            Some(Event::Start(Tag::Heading {
                level: shifted(level),
                id: None,
                classes: Vec::new(),
                attrs: Vec::new(),
            }))
        }
        Event::End(TagEnd::Heading(level)) => Some(Event::End(TagEnd::Heading(shifted(level)))),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            if safe_link(&dest_url) {
                dropped_ends.push(false);
                Some(Event::Start(Tag::Link { link_type, dest_url, title, id }))
            } else {
                dropped_ends.push(true);
                None
            }
        }
        Event::End(TagEnd::Link) => match dropped_ends.pop() {
            Some(true) => None,
            _ => Some(Event::End(TagEnd::Link)),
        },
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::FootnoteReference(text) => Some(Event::Text(CowStr::from(format!("[{text}]")))),
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_text() {
        let html = render("<script>alert(1)</script>\n\nhi <b onclick=\"x\">there</b>");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<b "), "{html}");
        assert!(html.contains("&lt;b onclick=\"x\"&gt;there&lt;/b&gt;"), "{html}");
    }

    #[test]
    fn dangerous_links_become_text() {
        for source in [
            "[click](javascript:alert(1))",
            "[click](JavaScript:alert(1))",
            "[click](java\tscript:alert(1))",
            "[click](&#106;avascript:alert(1))",
            "<javascript:alert(1)>",
            "[click](data:text/html,hi)",
            "[click](vbscript:x)",
        ] {
            let html = render(source);
            assert!(!html.contains("<a"), "{source} → {html}");
            assert!(!html.to_lowercase().contains("href"), "{source} → {html}");
        }
        let html = render("[docs](https://example.com/a?b=1&c=2) and [here](docs/setup.md)");
        assert!(html.contains("<a href=\"https://example.com/a?b=1&amp;c=2\">docs</a>"), "{html}");
        assert!(html.contains("<a href=\"docs/setup.md\">here</a>"), "{html}");
    }

    #[test]
    fn images_become_alt_text_and_headings_move_down() {
        let html = render("# Title\n\n## Part\n\n![a chart](https://evil.example/x.png)");
        assert!(html.contains("<h3>Title</h3>") && html.contains("<h4>Part</h4>"), "{html}");
        assert!(!html.contains("<img") && html.contains("a chart"), "{html}");
    }

    #[test]
    fn tables_and_code_render() {
        let html = render("| a | b |\n|---|---|\n| 1 | <i>2</i> |\n\n```\n<x>\n```");
        assert!(html.contains("<table>") && html.contains("&lt;i&gt;2&lt;/i&gt;"), "{html}");
        assert!(html.contains("<pre><code>&lt;x&gt;\n</code></pre>"), "{html}");
    }
}
