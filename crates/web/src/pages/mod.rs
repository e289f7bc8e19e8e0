//! The pages, one module per area. A handler reads through the same `Service` calls as the
//! API, renders with `layout::page`, and answers a refusal with a [`errors::PageError`].

pub mod assets;
pub mod dashboard;
pub mod errors;
pub mod journal;
pub mod lookups;
pub mod master;
pub mod purchases;
pub mod signin;

/// The page of a recorded document, by the kind its entry carries. A new kind of document
/// with a detail page adds its line here, and the journal links to it.
pub fn document_href(kind: &str, id: &str) -> Option<String> {
    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    match kind {
        "purchase" => Some(format!("/purchases/{id}")),
        _ => None,
    }
}
