//! HTML to Markdown-style text: the main content with headings as `#` lines, paragraphs and
//! list items on their own lines, table cells separated by ` | `; scripts, styles, forms and
//! navigation chrome (nav, header, footer, aside, or elements with their ARIA roles) are dropped, and so is page furniture that
//! would otherwise compete with the text it points at in search: permalink marks beside
//! headings (Sphinx's "¶", GitHub's "#") and in-page tables of contents (lists made only of
//! links to anchors on the same page, which repeat every heading word for word).

use scraper::{ElementRef, Html, Node, Selector};

/// Elements whose text is never content.
const SKIP: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "nav", "header",
    "footer", "aside", "form", "button", "select", "head",
];

/// ARIA landmark roles of the same chrome, which pages built before HTML5's elements (or
/// by generators that keep to `div`, as Sphinx does for its sidebar) give instead.
const SKIP_ROLES: &[&str] = &[
    "navigation",
    "search",
    "banner",
    "contentinfo",
    "complementary",
];

/// Class or id names that mark a sidebar, footer or breadcrumb trail on pages that use
/// neither HTML5's elements nor ARIA roles for them (Django's documentation theme, many
/// older sites). Whole names only: "footer" drops `<div id="footer">`, not `class="footnotes"`.
const CHROME_NAMES: &[&str] = &[
    "sidebar",
    "footer",
    "site-footer",
    "breadcrumb",
    "breadcrumbs",
    "pagination",
];

/// Characters that separate the links of a navigation bar ("« previous | up | next »").
const BAR_SEPARATORS: &[char] = &[
    '|', '«', '»', '‹', '›', '·', '•', '/', '-', '–', '—', ':', '<', '>', '←', '→', '[', ']', '(',
    ')', ',',
];

/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "tr",
    "br",
    "pre",
    "blockquote",
    "dd",
    "dt",
    "figcaption",
    "table",
    "ul",
    "ol",
    "hr",
];

pub(super) fn to_markdown(html: &str) -> String {
    let doc = Html::parse_document(html);
    // Prefer the page's main content when it marks it.
    let root = ["main", "article", "[role=main]", "body"]
        .iter()
        .find_map(|sel| {
            doc.select(&Selector::parse(sel).expect("static selector"))
                .next()
        })
        .unwrap_or_else(|| doc.root_element());
    let mut out = String::new();
    walk(root, &mut out);
    tidy(&out)
}

fn walk(element: ElementRef<'_>, out: &mut String) {
    let name = element.value().name();
    let chrome = element
        .value()
        .attr("role")
        .is_some_and(|role| SKIP_ROLES.contains(&role.trim()));
    if SKIP.contains(&name)
        || chrome
        || is_marked_chrome(element)
        || is_permalink(element)
        || is_local_toc(element)
        || is_link_bar(element)
    {
        return;
    }
    if let Some(level) = heading_level(name) {
        let mut text = String::new();
        heading_text(element, &mut text);
        let text = collapse(&text);
        if !text.is_empty() {
            out.push_str("\n\n");
            out.push_str(&"#".repeat(level));
            out.push(' ');
            out.push_str(&text);
            out.push_str("\n\n");
        }
        return;
    }
    let block = BLOCKS.contains(&name);
    if block {
        out.push('\n');
    }
    if name == "li" {
        out.push_str("- ");
    }
    let cell = name == "td" || name == "th";
    for child in element.children() {
        match child.value() {
            Node::Text(t) => {
                if name == "pre" {
                    out.push_str(t);
                } else {
                    let text = collapse(t);
                    if !text.is_empty() {
                        if !out.ends_with([' ', '\n', '-'])
                            && !out.is_empty()
                            && t.starts_with(char::is_whitespace)
                        {
                            out.push(' ');
                        }
                        out.push_str(&text);
                        if t.ends_with(char::is_whitespace) {
                            out.push(' ');
                        }
                    }
                }
            }
            Node::Element(_) => {
                if let Some(child) = ElementRef::wrap(child) {
                    walk(child, out);
                }
            }
            _ => {}
        }
    }
    if cell {
        out.push_str(" | ");
    }
    if block {
        out.push('\n');
    }
}

/// A heading's words, without its permalink mark.
fn heading_text(element: ElementRef<'_>, out: &mut String) {
    for child in element.children() {
        match child.value() {
            Node::Text(t) => {
                out.push(' ');
                out.push_str(t);
            }
            Node::Element(_) => {
                if let Some(child) = ElementRef::wrap(child).filter(|c| !is_permalink(*c)) {
                    heading_text(child, out);
                }
            }
            _ => {}
        }
    }
}

/// Marks that documentation generators put beside headings, terms and paragraphs to link to
/// them: an in-page link whose class says so, or whose text is only a symbol or a number.
fn is_permalink(element: ElementRef<'_>) -> bool {
    let el = element.value();
    if el.name() != "a" || !el.attr("href").is_some_and(|h| h.starts_with('#')) {
        return false;
    }
    let marked = el.classes().any(|c| {
        matches!(
            c,
            "headerlink"
                | "anchor"
                | "anchorjs-link"
                | "permalink"
                | "heading-anchor"
                | "hash-link"
        )
    });
    let text: String = element.text().collect();
    let text = text.trim();
    // A bare number linking within the page is a paragraph's own citation number (SiSU's
    // EPUBs number every paragraph) or a footnote mark: noise in the sentence it sits in.
    let number = !text.is_empty() && text.len() <= 6 && text.bytes().all(|b| b.is_ascii_digit());
    marked || number || matches!(text, "" | "¶" | "#" | "§" | "🔗")
}

/// An element whose class or id names it as a sidebar, footer or breadcrumb trail.
fn is_marked_chrome(element: ElementRef<'_>) -> bool {
    let el = element.value();
    el.classes().chain(el.id()).any(|name| {
        CHROME_NAMES
            .iter()
            .any(|chrome| name.eq_ignore_ascii_case(chrome))
    })
}

/// A navigation bar: a line of two or more links with nothing between them but separators
/// ("Home | Contents | Index", "« previous | up | next »"). A sentence that contains links
/// has words outside them and stays.
fn is_link_bar(element: ElementRef<'_>) -> bool {
    let el = element.value();
    if !matches!(el.name(), "div" | "p" | "span" | "td") {
        return false;
    }
    let mut links = 0;
    for node in element.descendants() {
        match node.value() {
            Node::Element(e) if e.name() == "a" => links += 1,
            Node::Element(e) if heading_level(e.name()).is_some() => return false,
            Node::Text(t) => {
                let in_link = node
                    .ancestors()
                    .take_while(|a| a.id() != element.id())
                    .any(|a| a.value().as_element().is_some_and(|e| e.name() == "a"));
                if !in_link
                    && !t
                        .chars()
                        .all(|c| c.is_whitespace() || BAR_SEPARATORS.contains(&c))
                {
                    return false;
                }
            }
            _ => {}
        }
    }
    links >= 2
}

/// A list whose every word is a link to an anchor on the same page: a table of contents.
fn is_local_toc(element: ElementRef<'_>) -> bool {
    let el = element.value();
    if !matches!(el.name(), "ul" | "ol") {
        return false;
    }
    let mut links = 0;
    for node in element.descendants() {
        match node.value() {
            Node::Element(e) if e.name() == "a" => {
                if !e.attr("href").is_some_and(|h| h.starts_with('#')) {
                    return false;
                }
                links += 1;
            }
            Node::Text(t) if !t.trim().is_empty() => {
                let in_link = node
                    .ancestors()
                    .take_while(|a| a.id() != element.id())
                    .any(|a| a.value().as_element().is_some_and(|e| e.name() == "a"));
                if !in_link {
                    return false;
                }
            }
            _ => {}
        }
    }
    links >= 2
}

fn heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Trims every line, drops a trailing cell separator, and keeps at most one blank line.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = true;
    for line in text.lines() {
        let line = line.trim().trim_end_matches('|').trim_end();
        if line.is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
        blank = false;
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_content_and_headings_and_drops_chrome() {
        let html = r#"<!doctype html><html><head><title>T</title><style>p{color:red}</style>
          <script>var secret = 1;</script></head><body>
          <nav><a href="/">Home</a> <a href="/about">About us</a></nav>
          <header>Site banner</header>
          <main><h1>Tide tables</h1><p>High tide is at <b>6:12</b> today.</p>
          <h2>Harbour</h2><ul><li>Berth one</li><li>Berth two</li></ul>
          <table><tr><th>Day</th><th>Height</th></tr><tr><td>Mon</td><td>4.1 m</td></tr></table></main>
          <footer>Copyright 2024</footer></body></html>"#;
        let md = to_markdown(html);
        assert_eq!(
            md,
            "# Tide tables\n\nHigh tide is at 6:12 today.\n\n## Harbour\n\n- Berth one\n\n- Berth two\n\nDay | Height\n\nMon | 4.1 m"
        );
    }

    /// Chrome marked by its ARIA role rather than its element, as Sphinx marks its sidebar:
    /// with no `main` on the page, the body is read, and the sidebar's headings would
    /// otherwise end the last section of the text.
    #[test]
    fn chrome_marked_by_its_role_is_dropped() {
        let html = r##"<html><body><div id="bd">
          <h1>FAQ</h1><h2>How do I cite it?</h2><p>As a book.</p></div>
          <div class="sphinxsidebar" role="navigation" aria-label="main navigation">
            <h3>Table of Contents</h3><h4>Previous topic</h4><p>Django FAQ</p></div>
          <div id="searchbox" role=" search "><h3>Quick search</h3></div>
          <div role="note"><p>Kept.</p></div></body></html>"##;
        assert_eq!(
            to_markdown(html),
            "# FAQ\n\n## How do I cite it?\n\nAs a book.\n\nKept."
        );
    }

    /// Sphinx's output: a local table of contents and "¶" permalinks on headings and terms.
    #[test]
    fn permalinks_and_local_tables_of_contents_are_dropped() {
        let html = r##"<html><body><div class="body" role="main">
          <h1>FAQ<a class="headerlink" href="#faq" title="Permalink to this heading">¶</a></h1>
          <ul><li><a href="#why">Why is the sky blue?</a></li>
              <li><a href="#how">How high is <code>up</code>?</a><ul><li><a href="#up">Up</a></li></ul></li></ul>
          <h2 id="why">Why is the sky blue?<a href="#why">#</a></h2>
          <p>Rayleigh scattering. See <a href="#how">below</a> and <a href="https://x.org">this</a>.</p>
          <ul><li><a href="#a">Only</a> links, but with words too</li><li><a href="#b">B</a></li></ul>
          <dl><dt>term<a class="headerlink" href="#term">¶</a></dt><dd>meaning</dd></dl>
          </div></body></html>"##;
        let md = to_markdown(html);
        assert_eq!(
            md,
            "# FAQ\n\n## Why is the sky blue?\n\nRayleigh scattering. See below and this.\n\n- Only links, but with words too\n\n- B\n\nterm\n\nmeaning"
        );
    }

    /// Django's documentation theme: no HTML5 chrome elements and no roles on its bars, a
    /// sidebar and footer named by id, and link bars separated by "|" and "«»". A paragraph
    /// with a link inside a sentence, and a list of links, are content and stay.
    #[test]
    fn link_bars_and_named_sidebars_are_dropped() {
        let html = r##"<html><body><div id="hd"><h1>Docs</h1>
          <div id="global-nav"><a href="/">Home</a> | <a href="/c">Table of contents</a> |
            <a href="/i">Index</a></div>
          <div class="nav">« <a href="m.html">previous</a> | <a href="u.html">up</a> |
            <a href="n.html">next</a> »</div></div>
          <div id="bd"><h1>FAQ: The admin</h1>
          <p>See <a href="/wsgi">serving the admin files</a> in the <a href="/h">mod_wsgi</a> guide.</p>
          <ul><li><a href="/a">Apache</a></li><li><a href="/n">nginx</a></li></ul></div>
          <div class="yui-b" id="sidebar"><h3>Last update:</h3><p>Nov 11, 2026</p></div>
          <div class="footer">© Django</div>
          <div class="footnotes"><p>1. A footnote.</p></div></body></html>"##;
        assert_eq!(
            to_markdown(html),
            "# Docs\n\n# FAQ: The admin\n\nSee serving the admin files in the mod_wsgi guide.\n\n- Apache\n\n- nginx\n\n1. A footnote."
        );
    }

    /// SiSU's EPUB chapters (Debian's live-manual) number every paragraph with a link to
    /// itself; footnote marks are in-page numbers too. Neither is the paragraph's text.
    #[test]
    fn paragraph_numbers_and_footnote_marks_are_dropped() {
        let html = r##"<html><body>
          <div class="substance"><label class="ocn"><a href="#o980" class="lnkocn">980</a></label>
          <p class="i0" id="o980">Improve your statements.</p></div>
          <p>Tides follow the moon<a href="#fn1">1</a> and <a href="/sun">the sun</a>, as 2024 showed.</p>
          </body></html>"##;
        assert_eq!(
            to_markdown(html),
            "Improve your statements.\n\nTides follow the moon and the sun, as 2024 showed."
        );
    }
}
