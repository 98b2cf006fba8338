//! What the surfaces a browser reaches share: the session cookie of the web UI (which also
//! authenticates the workspace proxy, never the JSON APIs) and the same-origin check made before
//! any unsafe request a browser sends with that cookie.

use axum::http::{HeaderMap, Method, header};

/// The name of the web UI's session cookie (its value is the session secret).
pub const SESSION_COOKIE: &str = "cairn_session";

/// The value of the cookie `name` in the request's `Cookie` headers, if present.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// Refuses a request a browser may have sent from another site: a WebSocket upgrade or an
/// unsafe method (anything but GET, HEAD, OPTIONS) whose `Origin` is not this server's own (its
/// `Host`, or `X-Forwarded-Host` behind a reverse proxy), or that the browser marks
/// `Sec-Fetch-Site: cross-site`/`same-site`. Requests without `Origin` (non-browser clients,
/// which send no cookies either) pass. The error says why, for the refusal's message.
pub fn same_origin(method: &Method, headers: &HeaderMap, upgrade: bool) -> Result<(), String> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if safe && !upgrade {
        return Ok(());
    }
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && matches!(site, "cross-site" | "same-site")
    {
        return Err(format!("refused a {site} request"));
    }
    let Some(origin) = text("origin") else { return Ok(()) };
    let authority = origin
        .strip_prefix("https://")
        .map(|rest| (rest, "443"))
        .or_else(|| origin.strip_prefix("http://").map(|rest| (rest, "80")));
    let Some((authority, default_port)) = authority else {
        return Err(format!("refused a request from origin {origin:?}"));
    };
    let normalise = |host: &str| {
        let host = host.to_ascii_lowercase();
        host.strip_suffix(&format!(":{default_port}")).map(str::to_string).unwrap_or(host)
    };
    let own = [text("x-forwarded-host"), text("host")];
    let matches = own.into_iter().flatten().any(|host| normalise(host) == normalise(authority));
    if matches { Ok(()) } else { Err(format!("refused a cross-origin request from {origin}")) }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_same_origin_browsers_may_upgrade_or_post() {
        let host = ("host", "cairn.example:8080");
        let get = headers(&[host, ("origin", "https://evil.example")]);
        assert!(same_origin(&Method::GET, &get, false).is_ok(), "safe methods pass");
        assert!(same_origin(&Method::GET, &get, true).is_err(), "cross-origin upgrade");
        assert!(same_origin(&Method::POST, &get, false).is_err(), "cross-origin post");
        let own = headers(&[host, ("origin", "http://Cairn.example:8080")]);
        assert!(same_origin(&Method::POST, &own, true).is_ok());
        let default_port =
            headers(&[("host", "cairn.example:443"), ("origin", "https://cairn.example")]);
        assert!(same_origin(&Method::DELETE, &default_port, false).is_ok());
        let behind_proxy = headers(&[
            ("host", "10.0.0.5:5000"),
            ("x-forwarded-host", "cairn.example"),
            ("origin", "https://cairn.example"),
        ]);
        assert!(same_origin(&Method::PUT, &behind_proxy, false).is_ok());
        let no_origin = headers(&[host]);
        assert!(same_origin(&Method::POST, &no_origin, true).is_ok(), "non-browser clients");
        let null = headers(&[host, ("origin", "null")]);
        assert!(same_origin(&Method::POST, &null, false).is_err());
        let fetch = headers(&[host, ("sec-fetch-site", "cross-site")]);
        assert!(same_origin(&Method::POST, &fetch, false).is_err());
    }

    #[test]
    fn cookies_are_found_by_name() {
        let map = headers(&[("cookie", "a=1; cairn_session=s3cret"), ("cookie", "b=\"2\"")]);
        assert_eq!(cookie(&map, SESSION_COOKIE), Some("s3cret"));
        assert_eq!(cookie(&map, "b"), Some("2"));
        assert_eq!(cookie(&map, "cairn"), None);
    }
}
