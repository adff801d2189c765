//! Rendering of the CommonMark prose fields for the web pages.
//!
//! Raw HTML in a definition is shown as text, never interpreted. The rendered HTML then
//! goes through a sanitiser that keeps only harmless tags. It also drops link and image
//! addresses whose scheme is not `http`, `https` or `mailto`, so a `javascript:` link in
//! an editor's text cannot run in a reader's browser.

use std::collections::HashSet;
use std::sync::OnceLock;

use pulldown_cmark::{Event, Options, Parser};

/// Renders one prose field to sanitised HTML.
pub fn render(text: &str) -> String {
    let events =
        Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|event| match event {
            // Shown as written: the text renderer escapes it.
            Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
            other => other,
        });
    let mut html = String::with_capacity(text.len() * 5 / 4);
    pulldown_cmark::html::push_html(&mut html, events);
    sanitizer().clean(&html).to_string()
}

/// Renders a short prose item, such as a pitfall, without the paragraph around a single
/// paragraph, so it sits inside a list item like plain text.
pub fn render_inline(text: &str) -> String {
    let html = render(text);
    let inner = html.strip_prefix("<p>").and_then(|rest| rest.trim_end().strip_suffix("</p>"));
    match inner {
        Some(inner) if !inner.contains("<p>") => inner.to_owned(),
        _ => html,
    }
}

fn sanitizer() -> &'static ammonia::Builder<'static> {
    static SANITIZER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    SANITIZER.get_or_init(|| {
        let mut builder = ammonia::Builder::default();
        builder.url_schemes(HashSet::from(["http", "https", "mailto"])).link_rel(Some("noopener noreferrer nofollow"));
        builder
    })
}

#[cfg(test)]
mod tests {
    use super::{render, render_inline};

    #[test]
    fn single_paragraph_unwrapped_inline() {
        assert_eq!(render_inline("Mixing *bookings* and revenue."), "Mixing <em>bookings</em> and revenue.");
        assert_eq!(render_inline("One.\n\nTwo."), "<p>One.</p>\n<p>Two.</p>\n");
    }

    #[test]
    fn emphasis_and_lists_rendered() {
        let html = render("Counts **logos**, not revenue.\n\n- one\n- two");
        assert!(html.contains("<strong>logos</strong>"), "{html}");
        assert!(html.contains("<li>one</li>"), "{html}");
    }

    #[test]
    fn script_shown_as_text() {
        let html = render("Before <script>alert(1)</script> after");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    }

    #[test]
    fn script_block_shown_as_text() {
        let html = render("<script>\nalert(1)\n</script>");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn unsafe_link_schemes_dropped() {
        for source in
            ["[x](javascript:alert(1))", "[x](data:text/html,hi)", "[x](vbscript:msgbox)", "<javascript:alert(1)>"]
        {
            let html = render(source);
            assert!(!html.contains("href=\"data:"), "{source}: {html}");
            assert!(!html.contains("href=\"vbscript:"), "{source}: {html}");
            assert!(!html.contains("href=\"javascript:"), "{source}: {html}");
        }
    }

    #[test]
    fn unsafe_image_schemes_dropped() {
        let html = render("![x](data:image/png;base64,AAAA)");
        assert!(!html.contains("data:image"), "{html}");
    }

    #[test]
    fn web_and_mail_links_kept() {
        let html = render("[standard](https://example.org/grr) and <mailto:team@example.org>");
        assert!(html.contains("href=\"https://example.org/grr\""), "{html}");
        assert!(html.contains("href=\"mailto:team@example.org\""), "{html}");
        assert!(html.contains("rel=\"noopener noreferrer nofollow\""), "{html}");
    }
}
