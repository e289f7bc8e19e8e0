//! The handlers of production: bills of materials, production runs, stock counts and the
//! production report, each a thin translation between HTTP and the service.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use service::bom::BomOutcome;
use service::dto::Page;
use service::dto_production::{
    BomIn, BomView, ProductionRunIn, ProductionRunView, RunReportView, StockCountIn, StockCountView,
};
use service::production::ReportQuery;
use service::Service;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{IdempotencyKey, Json, Q};
use crate::routes::{csv_response, json_or_csv, outcome, ListQuery};

#[utoipa::path(post, path = "/api/v1/boms", tag = "master data", request_body = BomIn,
    responses((status = 201, body = BomView), (status = 200, description = "Already there, identical, or replaced before any run used it", body = BomView),
        (status = 409, description = "A run has used this version; a different body needs a new version", body = Problem), (status = 422, body = Problem)))]
pub async fn create_bom(State(s): State<Service>, Json(input): Json<BomIn>) -> ApiResult<Response> {
    let saved = s.create_bom(&input).await?;
    let status = match saved.outcome {
        BomOutcome::Created => StatusCode::CREATED,
        BomOutcome::Unchanged | BomOutcome::Replaced => StatusCode::OK,
    };
    Ok((status, axum::Json(saved.value)).into_response())
}

#[utoipa::path(get, path = "/api/v1/boms", tag = "master data", params(ListQuery),
    responses((status = 200, description = "JSON, or with `format=csv` one row per material in the import columns", body = Page<BomView>)))]
pub async fn list_boms(State(s): State<Service>, Q(q): Q<ListQuery>) -> ApiResult<Response> {
    let page = s.boms(q.after.as_deref(), q.limit).await?;
    json_or_csv(&q, page, service::bom::boms_csv)
}

#[utoipa::path(get, path = "/api/v1/boms/{product_sku}/{version}", tag = "master data",
    responses((status = 200, body = BomView), (status = 404, body = Problem)))]
pub async fn get_bom(
    State(s): State<Service>,
    Path((product_sku, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<BomView>> {
    Ok(axum::Json(s.bom(&product_sku, &version).await?))
}

#[utoipa::path(post, path = "/api/v1/production-runs", tag = "documents", request_body = ProductionRunIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the first answer again")),
    responses((status = 201, body = ProductionRunView), (status = 409, description = "Insufficient stock (naming sku, lot, available, requested), an expired lot, a lot number taken", body = Problem), (status = 422, body = Problem)))]
pub async fn create_production_run(
    State(s): State<Service>,
    caller: Caller,
    key: IdempotencyKey,
    Json(input): Json<ProductionRunIn>,
) -> ApiResult<Response> {
    Ok(outcome(
        s.record_production_run(&input, caller.name(), key.0.as_deref())
            .await?,
    ))
}

fn json_only(q: &ListQuery, what: &str) -> ApiResult<()> {
    if q.format.as_deref().is_some_and(|f| f != "json") {
        return Err(ApiError::bad_request(format!("{what} are listed as json")));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/production-runs", tag = "documents", params(ListQuery), responses((status = 200, body = Page<ProductionRunView>)))]
pub async fn list_production_runs(
    State(s): State<Service>,
    Q(q): Q<ListQuery>,
) -> ApiResult<axum::Json<Page<serde_json::Value>>> {
    json_only(&q, "production runs")?;
    Ok(axum::Json(
        s.production_runs(q.after.as_deref(), q.limit).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/production-runs/{id}", tag = "documents",
    responses((status = 200, description = "The run as recorded, with its report", body = ProductionRunView), (status = 404, body = Problem)))]
pub async fn get_production_run(
    State(s): State<Service>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    Ok(axum::Json(s.production_run(&id).await?))
}

#[utoipa::path(post, path = "/api/v1/stock-counts", tag = "documents", request_body = StockCountIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the first answer again")),
    responses((status = 201, body = StockCountView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_stock_count(
    State(s): State<Service>,
    caller: Caller,
    key: IdempotencyKey,
    Json(input): Json<StockCountIn>,
) -> ApiResult<Response> {
    Ok(outcome(
        s.record_stock_count(&input, caller.name(), key.0.as_deref())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/stock-counts", tag = "documents", params(ListQuery), responses((status = 200, body = Page<StockCountView>)))]
pub async fn list_stock_counts(
    State(s): State<Service>,
    Q(q): Q<ListQuery>,
) -> ApiResult<axum::Json<Page<service::JsonText>>> {
    json_only(&q, "stock counts")?;
    Ok(axum::Json(
        s.documents("stock-count", q.after.as_deref(), q.limit)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/stock-counts/{id}", tag = "documents", responses((status = 200, body = StockCountView), (status = 404, body = Problem)))]
pub async fn get_stock_count(
    State(s): State<Service>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<service::JsonText>> {
    Ok(axum::Json(
        s.document("stock-count", "stock-count", &id).await?,
    ))
}

/// Filter, paging and format of the production report.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProductionReportQuery {
    /// One run only.
    pub run_id: Option<String>,
    /// Runs of one product only.
    pub product_sku: Option<String>,
    /// The `next` cursor of the previous page (JSON only; CSV holds every run).
    pub after: Option<String>,
    /// Runs per page, at most 1000 (default 100; JSON only).
    pub limit: Option<u32>,
    /// `json` (default) or `csv` (one row per run and material).
    pub format: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/reports/production", tag = "reports", params(ProductionReportQuery),
    responses((status = 200, description = "Per run: output, total and unit cost, and per material the standard, actual and variance quantities. JSON, or CSV with `format=csv`", body = Page<RunReportView>)))]
pub async fn production_report(
    State(s): State<Service>,
    Q(q): Q<ProductionReportQuery>,
) -> ApiResult<Response> {
    let query = ReportQuery {
        run_id: q.run_id,
        product_sku: q.product_sku,
    };
    match q.format.as_deref() {
        None | Some("json") => Ok(axum::Json(
            s.production_report(&query, q.after.as_deref(), q.limit)
                .await?,
        )
        .into_response()),
        Some("csv") => Ok(csv_response(s.production_report_csv(&query).await?)),
        Some(other) => Err(ApiError::bad_request(format!(
            "format {other:?} is not json or csv"
        ))),
    }
}
