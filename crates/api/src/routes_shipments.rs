//! The handlers of receipts, batches, donations, acknowledgements, closing and shipment
//! status: each a thin translation between HTTP and the service.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use service::dto::{
    AcknowledgementIn, AcknowledgementView, BatchIn, CloseIn, CloseView, DispatchView, DonationIn,
    Page, ReceiptIn, ReceiptView, ShipmentView,
};
use service::shipment::ShipmentQuery;
use service::Service;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{IdempotencyKey, Json, Q};
use crate::routes::{outcome, ListQuery};

/// Filter and paging of `GET /shipments`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ShipmentListQuery {
    /// `batch` or `donation`.
    pub kind: Option<String>,
    /// `dispatched`, `partly-acknowledged`, `acknowledged` or `closed`.
    pub status: Option<String>,
    /// Shipments with a line to this party (a subdistrict, community or hospital).
    pub destination: Option<String>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
    /// Page size, at most 1000 (default 100).
    pub limit: Option<u32>,
}

/// Filter and paging of `GET /batches` and `GET /donations`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KindListQuery {
    /// `dispatched`, `partly-acknowledged`, `acknowledged` or `closed`.
    pub status: Option<String>,
    /// Shipments with a line to this party.
    pub destination: Option<String>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

fn json_only(q: &ListQuery, what: &str) -> ApiResult<()> {
    match q.format.as_deref() {
        None | Some("json") => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!("{what} are listed as json"))),
    }
}

#[utoipa::path(post, path = "/api/v1/receipts", tag = "documents", request_body = ReceiptIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the first answer again")),
    responses((status = 201, body = ReceiptView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_receipt(
    State(s): State<Service>,
    caller: Caller,
    key: IdempotencyKey,
    Json(input): Json<ReceiptIn>,
) -> ApiResult<Response> {
    Ok(outcome(
        s.record_receipt(&input, caller.name(), key.0.as_deref())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/receipts", tag = "documents", params(ListQuery), responses((status = 200, body = Page<ReceiptView>)))]
pub async fn list_receipts(
    State(s): State<Service>,
    Q(q): Q<ListQuery>,
) -> ApiResult<axum::Json<Page<service::JsonText>>> {
    json_only(&q, "receipts")?;
    Ok(axum::Json(
        s.documents("receipt", q.after.as_deref(), q.limit).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/receipts/{id}", tag = "documents", responses((status = 200, body = ReceiptView), (status = 404, body = Problem)))]
pub async fn get_receipt(
    State(s): State<Service>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<service::JsonText>> {
    Ok(axum::Json(s.document("receipt", "receipt", &id).await?))
}

#[utoipa::path(post, path = "/api/v1/batches", tag = "shipments", request_body = BatchIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the first answer again")),
    responses((status = 201, description = "The batch as dispatched", body = DispatchView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_batch(
    State(s): State<Service>,
    caller: Caller,
    key: IdempotencyKey,
    Json(input): Json<BatchIn>,
) -> ApiResult<Response> {
    Ok(outcome(
        s.record_batch(&input, caller.name(), key.0.as_deref())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/batches", tag = "shipments", params(KindListQuery), responses((status = 200, body = Page<ShipmentView>)))]
pub async fn list_batches(
    State(s): State<Service>,
    Q(q): Q<KindListQuery>,
) -> ApiResult<axum::Json<Page<ShipmentView>>> {
    list_of_kind(s, "batch", q).await
}

#[utoipa::path(get, path = "/api/v1/batches/{id}", tag = "shipments", responses((status = 200, description = "The batch as it is now", body = ShipmentView), (status = 404, body = Problem)))]
pub async fn get_batch(
    State(s): State<Service>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ShipmentView>> {
    Ok(axum::Json(
        s.shipment(&id, Some(ledger::ShipmentKind::Batch)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/donations", tag = "shipments", request_body = DonationIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the first answer again")),
    responses((status = 201, description = "The donation as dispatched", body = DispatchView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_donation(
    State(s): State<Service>,
    caller: Caller,
    key: IdempotencyKey,
    Json(input): Json<DonationIn>,
) -> ApiResult<Response> {
    Ok(outcome(
        s.record_donation(&input, caller.name(), key.0.as_deref())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/donations", tag = "shipments", params(KindListQuery), responses((status = 200, body = Page<ShipmentView>)))]
pub async fn list_donations(
    State(s): State<Service>,
    Q(q): Q<KindListQuery>,
) -> ApiResult<axum::Json<Page<ShipmentView>>> {
    list_of_kind(s, "donation", q).await
}

#[utoipa::path(get, path = "/api/v1/donations/{id}", tag = "shipments", responses((status = 200, description = "The donation as it is now", body = ShipmentView), (status = 404, body = Problem)))]
pub async fn get_donation(
    State(s): State<Service>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ShipmentView>> {
    Ok(axum::Json(
        s.shipment(&id, Some(ledger::ShipmentKind::Donation))
            .await?,
    ))
}

async fn list_of_kind(
    s: Service,
    kind: &str,
    q: KindListQuery,
) -> ApiResult<axum::Json<Page<ShipmentView>>> {
    let query = ShipmentQuery {
        kind: Some(kind.to_owned()),
        status: q.status,
        destination: q.destination,
    };
    Ok(axum::Json(
        s.shipments(&query, q.after.as_deref(), q.limit).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/shipments", tag = "shipments", params(ShipmentListQuery), responses((status = 200, body = Page<ShipmentView>), (status = 422, body = Problem)))]
pub async fn list_shipments(
    State(s): State<Service>,
    Q(q): Q<ShipmentListQuery>,
) -> ApiResult<axum::Json<Page<ShipmentView>>> {
    let query = ShipmentQuery {
        kind: q.kind,
        status: q.status,
        destination: q.destination,
    };
    Ok(axum::Json(
        s.shipments(&query, q.after.as_deref(), q.limit).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/shipments/{id}", tag = "shipments", responses((status = 200, body = ShipmentView), (status = 404, body = Problem)))]
pub async fn get_shipment(
    State(s): State<Service>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ShipmentView>> {
    Ok(axum::Json(s.shipment(&id, None).await?))
}

#[utoipa::path(post, path = "/api/v1/shipments/{id}/acknowledgements", tag = "shipments", request_body = AcknowledgementIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the first answer again")),
    responses((status = 201, body = AcknowledgementView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn acknowledge(
    State(s): State<Service>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    Json(input): Json<AcknowledgementIn>,
) -> ApiResult<Response> {
    Ok(outcome(
        s.acknowledge(&id, &input, caller.name(), key.0.as_deref())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/shipments/{id}/acknowledgements", tag = "shipments", params(ListQuery), responses((status = 200, body = Page<AcknowledgementView>), (status = 404, body = Problem)))]
pub async fn list_acknowledgements(
    State(s): State<Service>,
    Path(id): Path<String>,
    Q(q): Q<ListQuery>,
) -> ApiResult<axum::Json<Page<service::JsonText>>> {
    json_only(&q, "acknowledgements")?;
    Ok(axum::Json(
        s.acknowledgements(&id, q.after.as_deref(), q.limit).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/shipments/{id}/acknowledgements/{ack_id}", tag = "shipments", responses((status = 200, body = AcknowledgementView), (status = 404, body = Problem)))]
pub async fn get_acknowledgement(
    State(s): State<Service>,
    Path((id, ack_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<service::JsonText>> {
    Ok(axum::Json(s.acknowledgement(&id, &ack_id).await?))
}

#[utoipa::path(post, path = "/api/v1/shipments/{id}/close", tag = "shipments", request_body = CloseIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the first answer again")),
    responses((status = 201, body = CloseView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn close_shipment(
    State(s): State<Service>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    Json(input): Json<CloseIn>,
) -> ApiResult<Response> {
    Ok(outcome(
        s.close_shipment(&id, &input, caller.name(), key.0.as_deref())
            .await?,
    ))
}
