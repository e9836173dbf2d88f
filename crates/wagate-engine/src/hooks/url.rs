//! A hook URL's syntax (the configuration and the API check it alike).

/// A hook URL's syntax: absolute http(s) with a host, no credentials, no fragment; or a
/// broker's URL ([`super::sinks::check`]).
pub fn check_url_syntax(url: &str) -> Result<reqwest::Url, String> {
    if super::sinks::is_sink(url) {
        super::sinks::check(url)?;
        return reqwest::Url::parse(url).map_err(|e| format!("`{}` is not a URL ({e})", super::sinks::masked(url)));
    }
    let u = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "`{url}` is not http or https, nor a broker (nats://, redis://, rediss://, amqp://, amqps://)"
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("put credentials in `headers`, not in the URL".into());
    }
    if u.fragment().is_some() {
        return Err(format!("`{url}` has a #fragment, which is never sent"));
    }
    Ok(u)
}
