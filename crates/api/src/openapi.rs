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
    axum::Json(ApiDoc::openapi())
}
