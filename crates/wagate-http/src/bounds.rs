//! The body limits of the routes, which the routers apply and the error body names.

/// Largest JSON body of an API request.
pub const API_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Largest media upload: Meta's largest file (documents, 100 MB), with room for the form.
pub const MEDIA_UPLOAD_LIMIT: usize = 101 * 1024 * 1024;

/// A Graph version is `v` and a number with a dot (`v23.0`); anything else is not Meta's path.
pub fn is_version(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|n| n.split_once('.'))
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()))
}

/// Whether a path is the front door's media upload (`/vNN.N/{phone-number-id}/media`).
pub fn is_upload_path(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(parts.as_slice(), [v, id, "media"] if is_version(v) && !id.is_empty())
}
