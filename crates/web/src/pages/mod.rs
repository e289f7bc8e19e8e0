//! The pages, one module per area. A handler reads through the same `Service` calls as the
//! API, renders with `layout::page`, and answers a refusal with a [`errors::PageError`].

pub mod acknowledge;
pub mod assets;
pub mod batches;
pub mod dashboard;
pub mod donations;
pub mod errors;
pub mod journal;
pub mod lookups;
pub mod master;
pub mod packing;
pub mod purchases;
pub mod recipient;
pub mod runs;
pub mod shipments;
pub mod signin;
pub mod trace;

use crate::session::Ctx;

/// The page of a recorded document, by the kind its entry carries. A new kind of document
/// with a detail page adds its line here, and the journal links to it. The entries of a
/// shipment (dispatch, acknowledgements, closing) carry the shipment's id.
pub fn document_href(kind: &str, id: &str) -> Option<String> {
    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    match kind {
        "purchase" => Some(format!("/purchases/{id}")),
        "production" => Some(format!("/runs/{id}")),
        "dispatch" | "acknowledgement" | "close" => Some(format!("/shipments/{id}")),
        _ => None,
    }
}

/// The actor a form's document is recorded as: the signed-in token's name, as for the API.
pub fn actor(ctx: &Ctx) -> String {
    ctx.caller
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

/// A suggested document id, unique to the second (`DON-20200310-093015`); the person may
/// write their own.
pub fn suggest_id(prefix: &str, now: time::OffsetDateTime) -> String {
    format!(
        "{prefix}-{:04}{:02}{:02}-{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}
