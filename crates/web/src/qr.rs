//! QR codes for packing lists, drawn as inline SVG on the server: they print sharp, need no
//! image crate and no script, and pass the content security policy.

use maud::{html, Markup, PreEscaped};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The QR code of `text` as an inline `<svg>` labelled `label`; `None` when the text is too
/// long for any QR code (a link never is).
pub fn svg(text: &str, label: &str) -> Option<Markup> {
    // Level M survives a crease or a smudge on a printed sheet and keeps the code small.
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let drawn = code
        .render::<svg::Color<'_>>()
        .min_dimensions(176, 176)
        .quiet_zone(true)
        .build();
    // Inline SVG takes no XML declaration.
    let start = drawn.find("<svg")?;
    let label = maud::html! { (label) }.into_string();
    let tagged = drawn[start..].replacen(
        "<svg ",
        &format!("<svg class=\"qr\" role=\"img\" aria-label=\"{label}\" "),
        1,
    );
    Some(html! { (PreEscaped(tagged)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_becomes_an_inline_svg() {
        let s = svg("http://127.0.0.1:8080/r/DON-1~KR-DSMC~1~abc", "QR <code>")
            .unwrap()
            .into_string();
        assert!(s.starts_with("<svg class=\"qr\" role=\"img\" aria-label=\"QR &lt;code&gt;\""));
        assert!(!s.contains("<?xml"));
        assert!(s.contains("<path fill=\"#000\" d=\"M"));
        assert!(s.ends_with("</svg>"));
    }
}
