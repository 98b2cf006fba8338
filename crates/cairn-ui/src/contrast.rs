//! A check of the stylesheet's colours against WCAG 2.1 AA (4.5:1 for text): every rule that
//! sets both a text colour and a background is checked as a pair; a rule that sets only a text
//! colour is checked on the page's backgrounds (white and the panel surface), or on the header's
//! dark background for the header's rules; and the site's text, muted and link colours are
//! checked on every background a rule sets for text to sit on (not the chart swatches).

use std::collections::HashMap;

/// The stylesheet.
const CSS: &str = include_str!("../static/cairn.css");
/// WCAG AA for normal text.
const AA: f64 = 4.5;
/// The header's background.
const HEADER_BACKGROUND: &str = "#1f2a37";

/// A colour as red, green and blue in 0–255.
fn hex(value: &str) -> Option<(u8, u8, u8)> {
    let digits = value.trim().strip_prefix('#')?;
    let channel = |text: &str| u8::from_str_radix(text, 16).ok();
    match digits.len() {
        3 => {
            let mut doubled = digits.chars().map(|c| format!("{c}{c}"));
            Some((
                channel(&doubled.next()?)?,
                channel(&doubled.next()?)?,
                channel(&doubled.next()?)?,
            ))
        }
        6 => Some((channel(&digits[..2])?, channel(&digits[2..4])?, channel(&digits[4..])?)),
        _ => None,
    }
}

/// The relative luminance of WCAG 2.1.
fn luminance((red, green, blue): (u8, u8, u8)) -> f64 {
    let linear = |channel: u8| {
        let value = f64::from(channel) / 255.0;
        if value <= 0.04045 { value / 12.92 } else { ((value + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)
}

/// The contrast ratio of two colours.
fn ratio(first: (u8, u8, u8), second: (u8, u8, u8)) -> f64 {
    let (a, b) = (luminance(first), luminance(second));
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

/// Rules as (selector, declarations), `@media` blocks flattened.
fn rules(css: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut found = Vec::new();
    let without_comments: String =
        css.split("/*").enumerate().fold(String::new(), |mut out, (i, part)| {
            if i == 0 {
                out.push_str(part);
            } else if let Some((_, rest)) = part.split_once("*/") {
                out.push_str(rest);
            }
            out
        });
    let mut rest = without_comments.as_str();
    while let Some(open) = rest.find('{') {
        let selector = rest[..open].rsplit('}').next().unwrap_or_default().trim().to_string();
        let body_start = open + 1;
        let Some(close) = rest[body_start..].find(['{', '}']) else { break };
        let body = &rest[body_start..body_start + close];
        if rest[body_start + close..].starts_with('{') {
            // An @media block: its rules follow.
            rest = &rest[body_start..];
            continue;
        }
        let declarations = body
            .split(';')
            .filter_map(|declaration| declaration.split_once(':'))
            .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
            .collect();
        found.push((selector, declarations));
        rest = &rest[body_start + close + 1..];
    }
    found
}

/// A colour value (`#…` or `var(--name)`), resolved through `:root`.
fn resolve(value: &str, variables: &HashMap<String, String>) -> Option<(u8, u8, u8)> {
    let value = value.trim();
    if let Some(name) = value.strip_prefix("var(").and_then(|inner| inner.strip_suffix(')')) {
        return hex(variables.get(name.trim())?);
    }
    hex(value.split_whitespace().next()?)
}

#[test]
fn the_stylesheet_meets_wcag_aa_contrast() {
    let rules = rules(CSS);
    let root = &rules.iter().find(|(selector, _)| selector == ":root").expect(":root").1;
    let variables: HashMap<String, String> = root
        .iter()
        .filter(|(name, _)| name.starts_with("--"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let white = (255, 255, 255);
    let surface = resolve("var(--surface)", &variables).expect("--surface");
    let header = hex(HEADER_BACKGROUND).expect("header colour");
    let site_colours = ["var(--text)", "var(--muted)", "var(--link)"];
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut check = |what: String, foreground: (u8, u8, u8), background: (u8, u8, u8)| {
        checked += 1;
        let found = ratio(foreground, background);
        if found < AA {
            failures.push(format!("{what}: {found:.2}:1"));
        }
    };
    for (selector, declarations) in &rules {
        let colour = declarations.get("color").and_then(|value| resolve(value, &variables));
        let background = declarations
            .get("background")
            .or_else(|| declarations.get("background-color"))
            .and_then(|value| resolve(value, &variables));
        match (colour, background) {
            (Some(colour), Some(background)) => check(selector.clone(), colour, background),
            (Some(colour), None) if selector.contains("header.site") => {
                check(format!("{selector} on the header"), colour, header);
            }
            (Some(colour), None) if selector != ":root" => {
                check(format!("{selector} on white"), colour, white);
                check(format!("{selector} on the surface"), colour, surface);
            }
            (None, Some(background)) if !selector.contains("swatch") => {
                for text in site_colours {
                    let colour = resolve(text, &variables).expect("a site colour");
                    check(format!("{text} on {selector}"), colour, background);
                }
            }
            _ => {}
        }
    }
    assert!(checked > 40, "only {checked} pairs were found: is the stylesheet parsed?");
    assert!(failures.is_empty(), "below 4.5:1:\n{}", failures.join("\n"));
}

#[test]
fn contrast_ratios_match_wcag_examples() {
    assert!((ratio((0, 0, 0), (255, 255, 255)) - 21.0).abs() < 0.01);
    assert!((ratio((0x76, 0x76, 0x76), (255, 255, 255)) - 4.54).abs() < 0.01);
    assert_eq!(hex("#fff"), Some((255, 255, 255)));
}
