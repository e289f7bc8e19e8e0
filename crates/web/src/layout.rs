//! The frame of every page: head, header with the navigation the caller's role may use, the
//! language switch, sign-out, and the main column.

use maud::{html, Markup, DOCTYPE};
use service::auth::Permission;

use crate::i18n::{Lang, Msg};
use crate::session::{Ctx, CSRF_FIELD};

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    None,
    Dashboard,
    Purchases,
    Runs,
    Batches,
    Donations,
    Trace,
    Journal,
    Verify,
    Items,
    Parties,
    Locations,
}

/// The navigation: each entry with the permission a role needs to see it. A new area of pages
/// adds its entry here.
const NAV: &[(Nav, &str, Msg, Permission)] = &[
    (Nav::Dashboard, "/", Msg::NavDashboard, Permission::Read),
    (
        Nav::Purchases,
        "/purchases",
        Msg::NavPurchases,
        Permission::Read,
    ),
    (Nav::Runs, "/runs", Msg::NavRuns, Permission::Read),
    (Nav::Batches, "/batches", Msg::NavBatches, Permission::Read),
    (
        Nav::Donations,
        "/donations",
        Msg::NavDonations,
        Permission::Read,
    ),
    (Nav::Trace, "/trace", Msg::NavTrace, Permission::Read),
    (Nav::Journal, "/journal", Msg::NavJournal, Permission::Read),
    (Nav::Verify, "/verify", Msg::NavVerify, Permission::Read),
    (Nav::Items, "/items", Msg::NavItems, Permission::Read),
    (Nav::Parties, "/parties", Msg::NavParties, Permission::Read),
    (
        Nav::Locations,
        "/locations",
        Msg::NavLocations,
        Permission::Read,
    ),
];

/// The hidden CSRF field every form carries.
pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf); }
}

fn language_switch(ctx: &Ctx) -> Markup {
    html! {
        nav.lang aria-label=(ctx.t(Msg::LanguageSwitch)) {
            @for l in Lang::ALL {
                @if l == ctx.lang {
                    span.current lang=(l.tag()) aria-current="true" { (l.locale().name) }
                } @else {
                    a lang=(l.tag()) hreflang=(l.tag()) href=(ctx.lang_href(l)) data-lang=(l.tag()) { (l.locale().name) }
                }
            }
        }
    }
}

/// A full page with the header and navigation.
pub fn page(ctx: &Ctx, title: &str, active: Nav, body: Markup) -> Markup {
    let app = ctx.t(Msg::AppName);
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (app) }
                link rel="icon" href="/static/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                a.skip href="#main" { (ctx.t(Msg::SkipToContent)) }
                header.top {
                    a.brand href="/" {
                        span.logo aria-hidden="true" { "◆" }
                        span { (app) }
                    }
                    @if let Some(caller) = &ctx.caller {
                        nav.main {
                            @for (nav, href, msg, perm) in NAV {
                                @if caller.role.may(*perm) {
                                    @if *nav == active {
                                        a.active href=(href) aria-current="page" { (ctx.t(*msg)) }
                                    } @else {
                                        a href=(href) { (ctx.t(*msg)) }
                                    }
                                }
                            }
                        }
                    }
                    div.side {
                        (language_switch(ctx))
                        @if let Some(caller) = &ctx.caller {
                            span.who title=(ctx.t(Msg::SignedInAs)) {
                                span.name { (caller.name) }
                                span.role { (ctx.lang.role(caller.role)) }
                            }
                            form.signout method="post" action="/signout" {
                                (csrf_field(ctx))
                                button.link type="submit" { (ctx.t(Msg::SignOut)) }
                            }
                        }
                    }
                }
                main #main {
                    (body)
                }
                footer.bottom {
                    span { (ctx.t(Msg::AppTagline)) }
                }
            }
        }
    }
}
