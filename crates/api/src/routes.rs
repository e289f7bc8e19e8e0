//! The handlers of `/api/v1`, each a thin translation between HTTP and the service.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use service::dto::{
    BalanceView, EntryView, ItemIn, LocationIn, Page, PartyIn, PurchaseIn, PurchaseView,
    ReversalIn, VerifyReport,
};
use service::master::Created;
use service::{Outcome, Service};
use store::BalanceFilter;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{IdempotencyKey, Json, RawBody, Q};

/// Paging and format of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
    /// Page size, at most 1000 (default 100).
    pub limit: Option<u32>,
    /// `json` (default) or `csv` (master data only).
    pub format: Option<String>,
}

/// Filter and paging of `GET /balances`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BalanceQuery {
    /// An account as written in the journal, e.g. `stock:RAW`.
    pub account: Option<String>,
    pub sku: Option<String>,
    pub lot: Option<String>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

pub(crate) fn json_or_csv<T: serde::Serialize>(
    q: &ListQuery,
    page: Page<T>,
    to_csv: impl FnOnce(&[T]) -> String,
) -> ApiResult<Response> {
    match q.format.as_deref() {
        None | Some("json") => Ok(axum::Json(page).into_response()),
        Some("csv") => Ok(csv_response(to_csv(&page.items))),
        Some(other) => Err(ApiError::bad_request(format!(
            "format {other:?} is not json or csv"
        ))),
    }
}

pub(crate) fn csv_response(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn created<T: serde::Serialize>(c: Created<T>) -> Response {
    let status = if c.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, axum::Json(c.value)).into_response()
}

/// A document's answer; replays say so in a header.
pub(crate) fn outcome(o: Outcome) -> Response {
    let status = StatusCode::from_u16(o.status).unwrap_or(StatusCode::OK);
    let mut res = (status, axum::Json(o.body)).into_response();
    if o.replayed {
        res.headers_mut()
            .insert("idempotent-replay", HeaderValue::from_static("true"));
    }
    res
}

fn seq_of(s: &str) -> ApiResult<u64> {
    s.parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::not_found("entry", s))
}

#[utoipa::path(get, path = "/healthz", tag = "meta", security(()), responses((status = 200, description = "The service is up")))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(post, path = "/api/v1/items", tag = "master data", request_body = ItemIn,
    responses((status = 201, body = ItemIn), (status = 200, description = "Already there, identical", body = ItemIn), (status = 422, body = Problem)))]
pub async fn create_item(
    State(s): State<Service>,
    Json(input): Json<ItemIn>,
) -> ApiResult<Response> {
    Ok(created(s.create_item(&input).await?))
}

#[utoipa::path(get, path = "/api/v1/items", tag = "master data", params(ListQuery), responses((status = 200, body = Page<ItemIn>)))]
pub async fn list_items(State(s): State<Service>, Q(q): Q<ListQuery>) -> ApiResult<Response> {
    let page = s.items(q.after.as_deref(), q.limit).await?;
    json_or_csv(&q, page, service::export::items_csv)
}

#[utoipa::path(get, path = "/api/v1/items/{sku}", tag = "master data", responses((status = 200, body = ItemIn), (status = 404, body = Problem)))]
pub async fn get_item(
    State(s): State<Service>,
    Path(sku): Path<String>,
) -> ApiResult<axum::Json<ItemIn>> {
    Ok(axum::Json(s.item(&sku).await?))
}

#[utoipa::path(post, path = "/api/v1/parties", tag = "master data", request_body = PartyIn,
    responses((status = 201, body = PartyIn), (status = 200, description = "Already there, identical", body = PartyIn), (status = 422, body = Problem)))]
pub async fn create_party(
    State(s): State<Service>,
    Json(input): Json<PartyIn>,
) -> ApiResult<Response> {
    Ok(created(s.create_party(&input).await?))
}

#[utoipa::path(get, path = "/api/v1/parties", tag = "master data", params(ListQuery), responses((status = 200, body = Page<PartyIn>)))]
pub async fn list_parties(State(s): State<Service>, Q(q): Q<ListQuery>) -> ApiResult<Response> {
    let page = s.parties(q.after.as_deref(), q.limit).await?;
    json_or_csv(&q, page, service::export::parties_csv)
}

#[utoipa::path(get, path = "/api/v1/parties/{code}", tag = "master data", responses((status = 200, body = PartyIn), (status = 404, body = Problem)))]
pub async fn get_party(
    State(s): State<Service>,
    Path(code): Path<String>,
) -> ApiResult<axum::Json<PartyIn>> {
    Ok(axum::Json(s.party(&code).await?))
}

#[utoipa::path(post, path = "/api/v1/locations", tag = "master data", request_body = LocationIn,
    responses((status = 201, body = LocationIn), (status = 200, description = "Already there, identical", body = LocationIn), (status = 422, body = Problem)))]
pub async fn create_location(
    State(s): State<Service>,
    Json(input): Json<LocationIn>,
) -> ApiResult<Response> {
    Ok(created(s.create_location(&input).await?))
}

#[utoipa::path(get, path = "/api/v1/locations", tag = "master data", params(ListQuery), responses((status = 200, body = Page<LocationIn>)))]
pub async fn list_locations(State(s): State<Service>, Q(q): Q<ListQuery>) -> ApiResult<Response> {
    let page = s.locations(q.after.as_deref(), q.limit).await?;
    json_or_csv(&q, page, service::export::locations_csv)
}

#[utoipa::path(get, path = "/api/v1/locations/{code}", tag = "master data", responses((status = 200, body = LocationIn), (status = 404, body = Problem)))]
pub async fn get_location(
    State(s): State<Service>,
    Path(code): Path<String>,
) -> ApiResult<axum::Json<LocationIn>> {
    Ok(axum::Json(s.location(&code).await?))
}

#[utoipa::path(post, path = "/api/v1/purchases", tag = "documents", request_body = PurchaseIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the first answer again")),
    responses((status = 201, body = PurchaseView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_purchase(
    State(s): State<Service>,
    caller: Caller,
    key: IdempotencyKey,
    Json(input): Json<PurchaseIn>,
) -> ApiResult<Response> {
    Ok(outcome(
        s.record_purchase(&input, caller.name(), key.0.as_deref())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/purchases", tag = "documents", params(ListQuery), responses((status = 200, body = Page<PurchaseView>)))]
pub async fn list_purchases(
    State(s): State<Service>,
    Q(q): Q<ListQuery>,
) -> ApiResult<axum::Json<Page<service::JsonText>>> {
    if q.format.as_deref().is_some_and(|f| f != "json") {
        return Err(ApiError::bad_request("purchases are listed as json"));
    }
    Ok(axum::Json(
        s.documents("purchase", q.after.as_deref(), q.limit).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/purchases/{id}", tag = "documents", responses((status = 200, body = PurchaseView), (status = 404, body = Problem)))]
pub async fn get_purchase(
    State(s): State<Service>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<service::JsonText>> {
    Ok(axum::Json(s.document("purchase", "purchase", &id).await?))
}

#[utoipa::path(get, path = "/api/v1/entries", tag = "ledger", params(ListQuery), responses((status = 200, body = Page<EntryView>)))]
pub async fn list_entries(
    State(s): State<Service>,
    Q(q): Q<ListQuery>,
) -> ApiResult<axum::Json<Page<EntryView>>> {
    if q.format.as_deref().is_some_and(|f| f != "json") {
        return Err(ApiError::bad_request("entries are listed as json"));
    }
    Ok(axum::Json(s.entries(q.after.as_deref(), q.limit).await?))
}

#[utoipa::path(get, path = "/api/v1/entries/{seq}", tag = "ledger", responses((status = 200, body = EntryView), (status = 404, body = Problem)))]
pub async fn get_entry(
    State(s): State<Service>,
    Path(seq): Path<String>,
) -> ApiResult<axum::Json<EntryView>> {
    Ok(axum::Json(s.entry(seq_of(&seq)?).await?))
}

#[utoipa::path(post, path = "/api/v1/entries/{seq}/reversal", tag = "ledger", request_body(content = Option<ReversalIn>),
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the first answer again")),
    responses((status = 201, body = EntryView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn reverse_entry(
    State(s): State<Service>,
    caller: Caller,
    key: IdempotencyKey,
    Path(seq): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let seq = seq_of(&seq)?;
    // The body is optional: an empty one reverses with the entry's own date and no memo.
    let input: ReversalIn = if body.iter().all(u8::is_ascii_whitespace) {
        ReversalIn::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    Ok(outcome(
        s.reverse(seq, &input, caller.name(), key.0.as_deref())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/balances", tag = "ledger", params(BalanceQuery), responses((status = 200, body = Page<BalanceView>)))]
pub async fn balances(
    State(s): State<Service>,
    Q(q): Q<BalanceQuery>,
) -> ApiResult<axum::Json<Page<BalanceView>>> {
    let filter = BalanceFilter {
        account: q.account,
        sku: q.sku,
        lot: q.lot,
    };
    Ok(axum::Json(
        s.balances(&filter, q.after.as_deref(), q.limit).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/verify", tag = "reports", responses((status = 200, body = VerifyReport)))]
pub async fn verify(State(s): State<Service>) -> ApiResult<axum::Json<VerifyReport>> {
    Ok(axum::Json(s.verify(&|_, _| {}).await?))
}

/// A token to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// A name that will appear as the actor of every entry the token makes.
    pub name: String,
    /// admin, manufacturer, coordinator or auditor.
    pub role: String,
    /// Days until the token expires; never when absent.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A token as listed: never its secret.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The secret, present only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn token_view(t: store::TokenRecord, token: Option<String>) -> TokenView {
    TokenView {
        name: t.name,
        role: t.role,
        created_at: t.created_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
        token,
    }
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "access", request_body = TokenIn,
    responses((status = 201, description = "The token; its secret is shown only here", body = TokenView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_token(
    State(s): State<Service>,
    Json(input): Json<TokenIn>,
) -> ApiResult<Response> {
    let role = input.role.parse().map_err(|e: String| {
        ApiError::invalid(vec![service::FieldError {
            field: "role".into(),
            message: e,
        }])
    })?;
    let t = s
        .create_token(&input.name, role, input.expires_in_days)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(token_view(t.record, Some(t.token))),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "access", responses((status = 200, body = Page<TokenView>)))]
pub async fn list_tokens(State(s): State<Service>) -> ApiResult<axum::Json<Page<TokenView>>> {
    let items = s
        .tokens()
        .await?
        .into_iter()
        .map(|t| token_view(t, None))
        .collect();
    Ok(axum::Json(Page { items, next: None }))
}

#[utoipa::path(post, path = "/api/v1/tokens/{name}/revoke", tag = "access", responses((status = 204, description = "Revoked"), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(s): State<Service>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.revoke_token(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Options of a report; each report reads the ones it understands.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default), `csv` or `xlsx`.
    pub format: Option<String>,
    /// trial-balance: entries up to and including this date.
    pub as_of: Option<String>,
    /// stock: only lots expiring within this many days.
    pub expiring_within_days: Option<u32>,
    /// donations: the percentage a declared value may differ from the ledger cost (default 5).
    pub tolerance_pct: Option<String>,
    /// in-transit: only shipments older than this many days.
    pub older_than_days: Option<u32>,
}

impl ReportQuery {
    fn params(&self) -> ApiResult<service::reports::ReportParams> {
        let as_of = match self.as_of.as_deref() {
            None | Some("") => None,
            Some(s) => Some(ledger::parse_date(s).map_err(|e| {
                ApiError::invalid(vec![service::FieldError {
                    field: "as_of".into(),
                    message: e,
                }])
            })?),
        };
        let tolerance_pct = match self.tolerance_pct.as_deref() {
            None | Some("") => None,
            Some(t) => Some(ledger::num::parse_decimal(t).map_err(|e| {
                ApiError::invalid(vec![service::FieldError {
                    field: "tolerance_pct".into(),
                    message: e.to_string(),
                }])
            })?),
        };
        Ok(service::reports::ReportParams {
            as_of,
            expiring_within_days: self.expiring_within_days,
            tolerance_pct,
            older_than_days: self.older_than_days,
        })
    }
}

/// A report as JSON, CSV or XLSX.
pub(crate) fn report_response(
    report: &service::reports::Report,
    format: Option<&str>,
) -> ApiResult<Response> {
    match format {
        None | Some("json") => {
            let mut body = Vec::new();
            report
                .write_json(&mut body, false)
                .expect("a report's JSON writes into memory");
            Ok((
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response())
        }
        Some("csv") => Ok(csv_response(report.to_csv())),
        Some("xlsx") => {
            let bytes = report.to_xlsx()?;
            let disposition = format!("attachment; filename=\"{}.xlsx\"", report.name);
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        ),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        HeaderValue::from_str(&disposition).map_err(ApiError::internal)?,
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "format {other:?} is not json, csv or xlsx"
        ))),
    }
}

#[utoipa::path(get, path = "/api/v1/reports/{name}", tag = "reports",
    params(("name" = String, Path, description = "trial-balance, conservation, donations, in-transit, production or stock"), ReportQuery),
    responses((status = 200, description = "The report as JSON, CSV or XLSX"), (status = 404, body = Problem)))]
pub async fn report(
    State(s): State<Service>,
    Path(name): Path<String>,
    Q(q): Q<ReportQuery>,
) -> ApiResult<Response> {
    let name: service::reports::ReportName = name
        .parse()
        .map_err(|_| ApiError::not_found("report", &name))?;
    let report = Box::pin(s.report(name, &q.params()?)).await?;
    report_response(&report, q.format.as_deref())
}

#[utoipa::path(post, path = "/api/v1/periods/close", tag = "ledger", request_body = service::dto::PeriodCloseIn,
    responses((status = 201, body = EntryView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn close_period(
    State(s): State<Service>,
    caller: Caller,
    key: IdempotencyKey,
    Json(input): Json<service::dto::PeriodCloseIn>,
) -> ApiResult<Response> {
    Ok(outcome(
        s.close_period(&input, caller.name(), key.0.as_deref())
            .await?,
    ))
}

/// Which way to trace.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    /// `backward` (default: where the lot came from) or `forward` (where it went, with recall).
    pub direction: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/trace/{lot}", tag = "reports", params(("lot" = String, Path), TraceQuery),
    responses((status = 200, body = service::trace::TraceView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn trace(
    State(s): State<Service>,
    Path(lot): Path<String>,
    Q(q): Q<TraceQuery>,
) -> ApiResult<axum::Json<service::trace::TraceView>> {
    let direction = q.direction.as_deref().unwrap_or("backward").parse()?;
    Ok(axum::Json(Box::pin(s.trace(&lot, direction)).await?))
}
