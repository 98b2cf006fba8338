//! Accessibility of every page type, checked automatically: each page (as a site admin, with
//! data on every page; the login and error pages too) is parsed with an HTML parser and must
//! have `<html lang>`, a skip link to `#main`, the `header`, `nav` and `main` landmarks,
//! exactly one `<h1>`, heading levels that never skip one going down, unique ids, a label (a
//! `<label for>`, an enclosing `<label>`, `aria-label` or `aria-labelledby`) for every form
//! control, `alt` on every image, and an accessible name on every button and link. (Colour
//! contrast is checked against the stylesheet by `cairn-ui`'s unit tests; keyboard use in the
//! browser test.)

use std::collections::HashSet;

use cairn_domain::audit::RequestContext;
use cairn_domain::governance::PromotionTarget;
use cairn_service::NewRun;
use reqwest::StatusCode;
use scraper::{ElementRef, Html, Selector};

use crate::ui::{Browser, token_of};
use crate::ui_ops::{compute_app, ops_data, pages};

fn select(selector: &str) -> Selector {
    Selector::parse(selector).expect("a selector")
}

/// The text of an element and its images' alt texts, trimmed.
fn name_of(element: ElementRef<'_>) -> String {
    let mut name: String = element.text().collect::<String>();
    for image in element.select(&select("img[alt]")) {
        name.push_str(image.value().attr("alt").unwrap_or_default());
    }
    name.trim().to_string()
}

fn has_aria_name(element: ElementRef<'_>) -> bool {
    ["aria-label", "aria-labelledby", "title"]
        .iter()
        .any(|name| element.value().attr(name).is_some_and(|value| !value.trim().is_empty()))
}

/// Everything wrong with `html` (empty when it passes).
pub(crate) fn problems(html: &str) -> Vec<String> {
    let document = Html::parse_document(html);
    let mut found = Vec::new();
    let lang = document.select(&select("html")).next().and_then(|html| html.value().attr("lang"));
    if lang.is_none_or(|lang| lang.trim().is_empty()) {
        found.push("<html> has no lang".to_string());
    }
    if document.select(&select("a.skip[href=\"#main\"]")).next().is_none() {
        found.push("no skip link to #main".into());
    }
    for landmark in ["header", "nav", "main#main"] {
        if document.select(&select(landmark)).next().is_none() {
            found.push(format!("no <{landmark}> landmark"));
        }
    }
    let h1 = document.select(&select("h1")).count();
    if h1 != 1 {
        found.push(format!("{h1} <h1> elements, not one"));
    }
    let mut previous = 0;
    for heading in document.select(&select("h1, h2, h3, h4, h5, h6")) {
        let level: usize = heading.value().name()[1..].parse().unwrap_or(1);
        if level > previous + 1 {
            found
                .push(format!("heading <h{level}> \"{}\" follows <h{previous}>", name_of(heading)));
        }
        previous = level;
    }
    let mut ids = HashSet::new();
    for element in document.select(&select("[id]")) {
        let id = element.value().attr("id").unwrap_or_default();
        if !ids.insert(id.to_string()) {
            found.push(format!("the id \"{id}\" is used twice"));
        }
    }
    let labelled: HashSet<String> = document
        .select(&select("label[for]"))
        .filter(|label| !name_of(*label).is_empty())
        .filter_map(|label| label.value().attr("for").map(str::to_string))
        .collect();
    for control in document.select(&select("input, select, textarea")) {
        let kind = control.value().attr("type").unwrap_or("text");
        if matches!(kind, "hidden" | "submit" | "button" | "reset") {
            continue;
        }
        let by_for = control.value().attr("id").is_some_and(|id| labelled.contains(id));
        let enclosed = control
            .ancestors()
            .filter_map(ElementRef::wrap)
            .any(|ancestor| ancestor.value().name() == "label" && !name_of(ancestor).is_empty());
        if !(by_for || enclosed || has_aria_name(control)) {
            let what = control.value().attr("name").unwrap_or("?");
            found.push(format!("the {} \"{what}\" has no label", control.value().name()));
        }
    }
    for image in document.select(&select("img")) {
        if image.value().attr("alt").is_none() {
            found.push(format!("an image without alt: {:?}", image.value().attr("src")));
        }
    }
    for button in document.select(&select("button, a[href], summary")) {
        if name_of(button).is_empty() && !has_aria_name(button) {
            found.push(format!("a <{}> without a name: {}", button.value().name(), button.html()));
        }
    }
    found
}

#[test]
fn the_checker_finds_problems() {
    let bad = "<!DOCTYPE html><html><body><h1>A</h1><h3>B</h3><h1>C</h1>\
               <input name=\"q\"><img src=\"x.png\"><button></button><a href=\"/\"></a>\
               <p id=\"x\"></p><p id=\"x\"></p></body></html>";
    let found = problems(bad).join("\n");
    for expected in [
        "no lang",
        "skip link",
        "<main#main>",
        "2 <h1>",
        "<h3> \"B\" follows <h1>",
        "\"x\" is used twice",
        "\"q\" has no label",
        "without alt",
        "<button> without a name",
        "<a> without a name",
    ] {
        assert!(found.contains(expected), "{expected} not reported:\n{found}");
    }
    let good = "<!DOCTYPE html><html lang=\"en\"><body><a class=\"skip\" href=\"#main\">Skip</a>\
                <header><nav><a href=\"/\">Home</a></nav></header><main id=\"main\"><h1>T</h1><h2>S</h2>\
                <label for=\"q\">Query</label><input id=\"q\"><label><input type=\"checkbox\"> On</label>\
                <select aria-label=\"Pick\"></select><img src=\"a.png\" alt=\"\"><button aria-label=\"Go\">→</button>\
                </main></body></html>";
    assert!(problems(good).is_empty(), "{:?}", problems(good));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_every_page_type_is_accessible() {
    let Some((app, f)) = compute_app().await else { return };
    let server = app.spawn().await;
    let data = ops_data(&app, &f, &server).await;
    let services = &app.app.services;
    let churn = RequestContext { project: Some("churn".into()), ..RequestContext::system() };
    let experiment = cairn_domain::ids::ExperimentId(f.experiment_id.parse().unwrap());
    let second = NewRun { experiment_id: experiment, user_id: "admin".into(), ..NewRun::default() };
    let second = services.tracking.create_run(&churn, second).await.unwrap().info.run_id;
    let champion = PromotionTarget::Alias("champion".into());
    let promotion = services
        .governance
        .promote(&churn, "churn-model", 1, &champion, false, None)
        .await
        .unwrap();
    let request = promotion.request.expect("a request").id;

    let admin = Browser::new(&server);
    let (status, _, page) = admin.get("/login").await;
    assert_eq!(status, StatusCode::OK);
    let mut failures = Vec::new();
    for problem in problems(&page) {
        failures.push(format!("/login: {problem}"));
    }
    let (status, _, _) = admin.login("admin", &token_of(&f, "admin")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let experiment_page = format!("/projects/churn/experiments/{}", f.experiment_id);
    let mut paths: Vec<String> = [
        "/",
        "/projects",
        "/projects/churn/members",
        experiment_page.as_str(),
        "/models",
        "/projects/churn/models/churn-model",
        "/projects/churn/models/churn-model/versions/1",
        "/approvals",
        "/audit",
        "/search?q=churn",
        "/admin/users",
        "/admin/teams",
        "/tokens",
        "/secrets",
        "/no/such/page",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    paths.push(format!("/approvals/{request}"));
    paths.push(format!("/projects/churn/compare?runs={}&runs={second}", f.run_id));
    paths.extend(pages(&f, &data).into_iter().map(|(path, _)| path));
    for path in &paths {
        let (status, _, page) = admin.get(path).await;
        let expected = if path == "/no/such/page" { StatusCode::NOT_FOUND } else { StatusCode::OK };
        assert_eq!(status, expected, "{path}: {page}");
        for problem in problems(&page) {
            failures.push(format!("{path}: {problem}"));
        }
    }
    assert!(paths.len() > 35, "{} pages", paths.len());
    assert!(failures.is_empty(), "accessibility problems:\n{}", failures.join("\n"));
    server.shutdown().await;
}
