//! SVG text drawn with the embedded font, so that a chart looks the same on
//! every machine.
//!
//! plotters' SVG backend writes `<text font-family="sans-serif">`, which
//! each viewer fills with a font of its own. [`outline`] rewrites a
//! chart's SVG: each glyph the chart uses becomes one `<path>` in `<defs>`,
//! cut from the embedded font's outlines (in font units, y down), and each
//! `<text>` is drawn as `<use>`s of its glyphs, placed with the font's own
//! advances and kerning, anchored and rotated as plotters asked. The
//! original `<text>` stays, transparent, so the words can still be found
//! and selected.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ab_glyph::{Font, FontRef, GlyphId, OutlineCurve};

/// One `<text>` element as plotters writes it.
#[derive(Debug, PartialEq)]
struct TextElement<'a> {
    x: f32,
    y: f32,
    /// `0.76em` (top), `0.5ex` (centre) or `-0.5ex` (bottom), as written.
    dy: &'a str,
    anchor: &'a str,
    size: f32,
    opacity: &'a str,
    fill: &'a str,
    transform: Option<&'a str>,
    text: String,
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// The text plotters escaped (`&amp;` last, so that `&amp;lt;` stays `&lt;`).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

impl<'a> TextElement<'a> {
    /// The element whose start tag is `tag` and whose content is `content`.
    fn parse(tag: &'a str, content: &str) -> Option<TextElement<'a>> {
        Some(TextElement {
            x: attribute(tag, "x")?.parse().ok()?,
            y: attribute(tag, "y")?.parse().ok()?,
            dy: attribute(tag, "dy").unwrap_or("0"),
            anchor: attribute(tag, "text-anchor").unwrap_or("start"),
            size: attribute(tag, "font-size")?.parse().ok()?,
            opacity: attribute(tag, "opacity").unwrap_or("1"),
            fill: attribute(tag, "fill").unwrap_or("#000000"),
            transform: attribute(tag, "transform"),
            text: unescape(content.trim()),
        })
    }
}

/// The glyph outlines of the embedded font, as SVG path data.
struct Outlines {
    font: FontRef<'static>,
    units_per_em: f32,
    /// x-height in em, for `dy="…ex"`.
    x_height: f32,
    /// Glyphs used, with their path data (`None`: no ink, like a space).
    used: BTreeMap<u16, Option<String>>,
}

impl Outlines {
    fn new() -> Outlines {
        let font =
            FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT).expect("the embedded font is a valid TTF");
        let units_per_em = font.units_per_em().unwrap_or(1000.0);
        let x_height = font.outline(font.glyph_id('x')).map_or(0.5, |outline| outline.bounds.height() / units_per_em);
        Outlines { font, units_per_em, x_height, used: BTreeMap::new() }
    }

    /// Path data of a glyph in font units, y pointing down as in SVG.
    fn path_of(&self, id: GlyphId) -> Option<String> {
        let outline = self.font.outline(id)?;
        let mut d = String::new();
        let mut at: Option<ab_glyph::Point> = None;
        for curve in &outline.curves {
            let (start, end) = match *curve {
                OutlineCurve::Line(a, b) | OutlineCurve::Quad(a, _, b) | OutlineCurve::Cubic(a, _, _, b) => (a, b),
            };
            if at != Some(start) {
                if at.is_some() {
                    d.push('Z');
                }
                let _ = write!(d, "M{} {}", start.x, -start.y);
            }
            match *curve {
                OutlineCurve::Line(_, b) => {
                    let _ = write!(d, "L{} {}", b.x, -b.y);
                }
                OutlineCurve::Quad(_, c, b) => {
                    let _ = write!(d, "Q{} {} {} {}", c.x, -c.y, b.x, -b.y);
                }
                OutlineCurve::Cubic(_, c1, c2, b) => {
                    let _ = write!(d, "C{} {} {} {} {} {}", c1.x, -c1.y, c2.x, -c2.y, b.x, -b.y);
                }
            }
            at = Some(end);
        }
        if at.is_some() {
            d.push('Z');
        }
        (!d.is_empty()).then_some(d)
    }

    /// The glyphs of `element` as a group of `<use>`s, placed as a viewer
    /// would place the text in this font.
    fn draw(&mut self, element: &TextElement<'_>) -> String {
        let mut pen = 0.0;
        let mut previous = None;
        let mut glyphs = Vec::new();
        for c in element.text.chars() {
            let id = self.font.glyph_id(c);
            if let Some(previous) = previous {
                pen += self.font.kern_unscaled(previous, id);
            }
            glyphs.push((id, pen));
            pen += self.font.h_advance_unscaled(id);
            previous = Some(id);
        }
        let scale = element.size / self.units_per_em;
        let width = pen * scale;
        let x = match element.anchor {
            "middle" => element.x - width / 2.0,
            "end" => element.x - width,
            _ => element.x,
        };
        let dy = match element.dy {
            "0.76em" => 0.76 * element.size,
            "0.5ex" => 0.5 * self.x_height * element.size,
            "-0.5ex" => -0.5 * self.x_height * element.size,
            other => other.strip_suffix("em").and_then(|em| em.parse::<f32>().ok()).map_or(0.0, |em| em * element.size),
        };
        let mut group = String::new();
        if let Some(transform) = element.transform {
            let _ = write!(group, "<g transform=\"{transform}\">");
        }
        let _ = write!(
            group,
            "<g fill=\"{}\" opacity=\"{}\" transform=\"translate({:.2} {:.2}) scale({})\">",
            element.fill,
            element.opacity,
            x,
            element.y + dy,
            scale
        );
        for (id, pen) in glyphs {
            let path = match self.used.get(&id.0) {
                Some(path) => path.is_some(),
                None => {
                    let path = self.path_of(id);
                    let inked = path.is_some();
                    self.used.insert(id.0, path);
                    inked
                }
            };
            if path {
                let _ = write!(group, "<use xlink:href=\"#g{}\" x=\"{pen}\"/>", id.0);
            }
        }
        group.push_str("</g>");
        if element.transform.is_some() {
            group.push_str("</g>");
        }
        group
    }

    fn defs(&self) -> String {
        let mut defs = String::from("<defs>");
        for (id, path) in &self.used {
            if let Some(d) = path {
                let _ = write!(defs, "<path id=\"g{id}\" d=\"{d}\"/>");
            }
        }
        defs.push_str("</defs>");
        defs
    }
}

/// `svg` (a chart plotters wrote) with every `<text>` drawn as glyph
/// outlines of the embedded font, the text itself kept transparent.
pub fn outline(svg: &str) -> String {
    let mut outlines = Outlines::new();
    let mut body = String::with_capacity(svg.len() * 2);
    let mut rest = svg;
    while let Some(start) = rest.find("<text ") {
        let Some(tag_end) = rest[start..].find('>').map(|e| start + e) else { break };
        let Some(close) = rest[tag_end..].find("</text>").map(|e| tag_end + e) else { break };
        let tag = &rest[start..tag_end];
        body.push_str(&rest[..start]);
        match TextElement::parse(tag, &rest[tag_end + 1..close]) {
            Some(element) => {
                body.push_str(&outlines.draw(&element));
                // The words, for search and selection, drawn by nobody.
                let invisible = tag.replacen(&format!(" opacity=\"{}\"", element.opacity), " opacity=\"0\"", 1);
                body.push_str(&invisible);
            }
            None => body.push_str(tag),
        }
        body.push_str(&rest[tag_end..close + "</text>".len()]);
        rest = &rest[close + "</text>".len()..];
    }
    body.push_str(rest);
    // The glyphs, defined once, right after the root's start tag.
    let Some(root_end) = body.find("<svg").and_then(|s| body[s..].find('>').map(|e| s + e)) else { return body };
    let root = body[..root_end].replacen("<svg ", "<svg xmlns:xlink=\"http://www.w3.org/1999/xlink\" ", 1);
    format!("{root}>{}{}", outlines.defs(), &body[root_end + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHART: &str = "<svg width=\"200\" height=\"100\" viewBox=\"0 0 200 100\" xmlns=\"http://www.w3.org/2000/svg\">\n\
<rect x=\"0\" y=\"0\" width=\"200\" height=\"100\" fill=\"#FFFFFF\"/>\n\
<text x=\"100\" y=\"10\" dy=\"0.76em\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"12\" opacity=\"1\" fill=\"#000000\">\nR &amp; G\n</text>\n\
<text x=\"20\" y=\"50\" dy=\"0.76em\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"10\" opacity=\"1\" fill=\"#000000\" transform=\"rotate(270, 20, 50)\">\nop\n</text>\n\
</svg>\n";

    #[test]
    fn every_glyph_is_defined_once_and_used_where_the_text_was() {
        let svg = outline(CHART);
        // R, &, G, o, p have ink; the space has none.
        assert_eq!(svg.matches("<path id=\"g").count(), 5, "{svg}");
        assert_eq!(svg.matches("<use ").count(), 5, "{svg}");
        assert!(svg.starts_with("<svg xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"200\""));
        // The rotated label keeps its rotation; the words stay, unseen.
        assert!(svg.contains("<g transform=\"rotate(270, 20, 50)\"><g fill=\"#000000\""));
        assert_eq!(svg.matches("opacity=\"0\"").count(), 2);
        assert!(svg.contains(">\nR &amp; G\n</text>") && svg.contains(">\nop\n</text>"));
        assert!(
            !svg.contains("opacity=\"1\" fill=\"#000000\">\nR"),
            "the text is no longer drawn by the viewer's font"
        );
    }

    #[test]
    fn escaped_text_is_drawn_as_the_characters_it_stands_for() {
        assert_eq!(unescape("the pool&apos;s &lt;frames&gt; &amp;apos; &#39;&quot;"), "the pool's <frames> &apos; '\"");
        // One glyph for the apostrophe, none for the letters of its entity.
        let svg = outline(&CHART.replace("R &amp; G", "R&apos;"));
        assert_eq!(svg.matches("<path id=\"g").count(), 4, "{svg}");
    }

    #[test]
    fn centred_text_is_centred_on_its_anchor_with_the_font_s_advances() {
        let mut outlines = Outlines::new();
        let tag = "<text x=\"100\" y=\"10\" dy=\"0.76em\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"20\" opacity=\"1\" fill=\"#000000\"";
        let element = TextElement::parse(tag, "\nii\n").unwrap();
        let group = outlines.draw(&element);
        let i = outlines.font.glyph_id('i');
        let width = (2.0 * outlines.font.h_advance_unscaled(i) + outlines.font.kern_unscaled(i, i)) * 20.0
            / outlines.units_per_em;
        let expected = format!("translate({:.2} {:.2})", 100.0 - width / 2.0, 10.0 + 0.76 * 20.0);
        assert!(group.contains(&expected), "{group} does not start at {expected}");
    }
}
