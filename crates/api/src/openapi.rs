//! The OpenAPI document, generated from the handlers' annotations, with the bearer scheme.

use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{routes, routes_production, routes_shipments};

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `ppe token create`"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "PPE ledger", description = "An exact, tamper-evident ledger of protective equipment from raw material to recipient."),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    paths(
        routes::healthz,
        routes::create_item, routes::list_items, routes::get_item,
        routes::create_party, routes::list_parties, routes::get_party,
        routes::create_location, routes::list_locations, routes::get_location,
        routes::create_purchase, routes::list_purchases, routes::get_purchase,
        routes_shipments::create_receipt, routes_shipments::list_receipts, routes_shipments::get_receipt,
        routes_shipments::create_batch, routes_shipments::list_batches, routes_shipments::get_batch,
        routes_shipments::create_donation, routes_shipments::list_donations, routes_shipments::get_donation,
        routes_shipments::list_shipments, routes_shipments::get_shipment,
        routes_shipments::acknowledge, routes_shipments::list_acknowledgements, routes_shipments::get_acknowledgement,
        routes_shipments::close_shipment,
        routes_production::create_bom, routes_production::list_boms, routes_production::get_bom,
        routes_production::create_production_run, routes_production::list_production_runs, routes_production::get_production_run,
        routes_production::create_stock_count, routes_production::list_stock_counts, routes_production::get_stock_count,
        routes_production::production_report,
        routes::list_entries, routes::get_entry, routes::reverse_entry,
        routes::balances, routes::verify, routes::report, routes::close_period, routes::trace,
        routes::create_token, routes::list_tokens, routes::revoke_token,
    ),
    components(schemas(crate::error::Problem, crate::error::ProblemField))
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> impl IntoResponse {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    axum::Json(DOC.get_or_init(document).clone())
}

/// The OpenAPI document as served: the handlers' annotations, plus what every route shares
/// and the annotations do not say (found by schemathesis, scripts/schemathesis.sh):
/// - refusals are `application/problem+json`, not `application/json`;
/// - every route under /api/v1 may answer 400 (malformed body or query) and 422 (a bad value,
///   cursor or Idempotency-Key); every route that needs a token 401 and 403; every route with
///   a path parameter 404; every POST 409 (the ledger's state forbids it) and 413 (too large);
/// - lists of master data answer `text/csv` too (`?format=csv`).
pub fn document() -> serde_json::Value {
    use serde_json::{json, Value};
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    let problem = |description: &str| {
        json!({"description": description,
               "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
    };
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            // Refusals are problem+json.
            for (status, response) in responses.iter_mut() {
                if status.as_str() >= "400" {
                    if let Some(content) =
                        response.get_mut("content").and_then(Value::as_object_mut)
                    {
                        if let Some(json) = content.remove("application/json") {
                            content.insert("application/problem+json".into(), json);
                        }
                    }
                }
            }
            if !path.starts_with("/api/v1/") || path == "/api/v1/openapi.json" {
                continue;
            }
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem(description));
            };
            add(
                "400",
                "Malformed request: the body is not JSON, or the query string is not understood",
            );
            add(
                "401",
                "No token, or a token that is unknown, revoked or expired",
            );
            add("403", "The token's role may not do this");
            add(
                "422",
                "A value, cursor or Idempotency-Key that is not acceptable",
            );
            if path.contains('{') {
                add("404", "No such resource");
            }
            if method == "post" {
                add("409", "The ledger's state forbids it");
                add("413", "The body is larger than the server accepts");
            }
            if matches!(
                path.as_str(),
                "/api/v1/items" | "/api/v1/parties" | "/api/v1/locations"
            ) && method == "get"
            {
                if let Some(content) = responses
                    .get_mut("200")
                    .and_then(|r| r.get_mut("content"))
                    .and_then(Value::as_object_mut)
                {
                    content.insert("text/csv".into(), json!({"schema": {"type": "string"}}));
                }
            }
        }
    }
    doc
}
