//! The body limits of the routes, which the routers apply and the error body names.

/// Largest JSON body of an API request.
pub const API_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Largest media upload: Meta's largest file (documents, 100 MB), with room for the form.
pub const MEDIA_UPLOAD_LIMIT: usize = 101 * 1024 * 1024;
