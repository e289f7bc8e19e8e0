//! Small pieces pages are built from: number and date cells, codes, hashes, empty states,
//! notices and pagers. Numbers and dates go through the language's formatting; codes are
//! shown as they are.

use maud::{html, Markup};

use crate::i18n::Lang;

/// A right-aligned number cell, grouped for the language, every digit kept.
pub fn num(lang: Lang, text: &str) -> Markup {
    html! { td.num { (lang.number(text)) } }
}

/// A code (sku, lot, party or location code, document id): never translated.
pub fn code(text: &str) -> Markup {
    html! { code { (text) } }
}

/// A hash, shortened for a table with the whole of it on hover and for copying.
pub fn hash_short(hash: &str) -> Markup {
    let short = hash.get(..12).unwrap_or(hash);
    html! { code.hash title=(hash) { (short) "…" } }
}

/// What a list says when it has nothing to show.
pub fn empty(text: &str) -> Markup {
    html! { p.empty { (text) } }
}

/// A notice at the top of a page (a document was recorded, the person signed out).
pub fn notice(text: &str) -> Markup {
    html! { p.notice role="status" { (text) } }
}

/// A link to the next page of a list, when there is one.
pub fn next_link(label: &str, base: &str, next: Option<&str>) -> Markup {
    html! {
        @if let Some(n) = next {
            nav.pager {
                a rel="next" href=(format!("{base}?after={}", form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>())) { (label) " →" }
            }
        }
    }
}

/// A page header: the title and, on the right, the actions the caller may take.
pub fn page_head(title: &str, intro: Option<&str>, actions: Markup) -> Markup {
    html! {
        div.page-head {
            div {
                h1 { (title) }
                @if let Some(i) = intro { p.intro { (i) } }
            }
            div.actions { (actions) }
        }
    }
}

/// Suggestions for a code input (`<input list=...>`): codes with their names. The input still
/// takes any text, so that the ledger, not the browser, says what is wrong with it.
pub fn datalist(id: &str, options: &[(String, String)]) -> Markup {
    html! {
        datalist #(id) {
            @for (code, name) in options { option value=(code) { (name) } }
        }
    }
}
