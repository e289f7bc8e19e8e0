//! Sign-in by pasting a token, and sign-out. The token goes into the session cookie only
//! after the service has accepted it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use service::Service;

use crate::components::notice;
use crate::form::{field_id, FormData};
use crate::i18n::Msg;
use crate::layout::{self, csrf_field, Nav};
use crate::pages::errors::{OrPage, PageResult};
use crate::session::{clear_cookie, cookie, Ctx, SESSION_COOKIE};

/// Where to go after sign-in: a path of this site only, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        // Visible ASCII only: it goes into a Location header as it is.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn render(ctx: &Ctx, next: &str, error: Option<Msg>, status: StatusCode) -> Response {
    let title = ctx.t(Msg::SignInTitle);
    let id = field_id("token");
    let body = html! {
        section.signin {
            h1 { (title) }
            @if ctx.param("signed_out").is_some() { (notice(ctx.t(Msg::SignedOut))) }
            p.intro { (ctx.t(Msg::SignInIntro)) }
            form method="post" action="/signin" {
                (csrf_field(ctx))
                input type="hidden" name="next" value=(next);
                div.field.invalid[error.is_some()] {
                    label for=(id) { (ctx.t(Msg::TokenLabel)) }
                    input #(id) type="password" name="token" required autocomplete="off"
                        spellcheck="false" placeholder="ppe_…" autofocus
                        aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[error.map(|_| format!("{id}-error"))];
                    @if let Some(e) = error {
                        p.field-error id=(format!("{id}-error")) data-field="token" { (ctx.t(e)) }
                    }
                }
                button.primary type="submit" { (ctx.t(Msg::SignInButton)) }
            }
            p.hint { (ctx.t(Msg::SignInWhere)) }
        }
    };
    (status, layout::page(ctx, title, Nav::None, body)).into_response()
}

pub async fn form(ctx: Ctx) -> Response {
    let next = safe_next(ctx.param("next").as_deref());
    render(&ctx, &next, None, StatusCode::OK)
}

pub async fn submit(State(s): State<Service>, ctx: Ctx, body: Bytes) -> PageResult {
    let f = FormData::parse(&body);
    let next = safe_next(f.opt("next").as_deref());
    let token = f.get("token");
    if token.is_empty() {
        return Ok(render(
            &ctx,
            &next,
            Some(Msg::SignInEmpty),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    // Tokens are `ppe_` and hex; anything else cannot be one, and must not reach a cookie.
    let plain = token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let caller = if plain {
        s.authenticate(&token).await.or_page(&ctx)?.ok()
    } else {
        None
    };
    if caller.is_none() {
        return Ok(render(
            &ctx,
            &next,
            Some(Msg::SignInRefused),
            StatusCode::UNAUTHORIZED,
        ));
    }
    let mut res = Redirect::to(&next).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, cookie(SESSION_COOKIE, &token, None));
    Ok(res)
}

pub async fn sign_out() -> Response {
    let mut res = Redirect::to("/signin?signed_out=1").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    res
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn sign_in_returns_only_to_this_site() {
        assert_eq!(safe_next(Some("/purchases?after=3")), "/purchases?after=3");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/a\nSet-Cookie: x=1")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
