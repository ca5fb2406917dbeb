//! Text for the bitmap charts, laid out glyph by glyph.
//!
//! plotters' own ab_glyph text places each glyph's outline at the pen
//! position without the glyph's left side bearing, so that letters with
//! different bearings crowd or gap ("classes" reads "dasses"). [`Glyphs`]
//! wraps a backend and draws text itself: each glyph's coverage at the pen
//! position plus its own bounds, advances and kerning from the font, the
//! anchor and the rotation from the style, as plotters' layout box measures
//! them (so that every other placement of the chart stays where it was).

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind};

/// A backend whose text is drawn with the embedded font, glyph by glyph.
#[derive(Debug)]
pub struct Glyphs<B> {
    inner: B,
    font: FontRef<'static>,
}

impl<B: DrawingBackend> Glyphs<B> {
    /// Wrap `inner`.
    pub fn new(inner: B) -> Glyphs<B> {
        let font =
            FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT).expect("the embedded font is a valid TTF");
        Glyphs { inner, font }
    }

    /// Pen advances of `text` at `size` pixels: each glyph's x offset, and
    /// the whole width (kerning included).
    fn layout(&self, size: f32, text: &str) -> (Vec<(ab_glyph::GlyphId, f32)>, f32) {
        let font = self.font.as_scaled(PxScale::from(size));
        let mut x = 0.0;
        let mut previous = None;
        let mut glyphs = Vec::new();
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(previous) = previous {
                x += font.kern(previous, id);
            }
            glyphs.push((id, x));
            x += font.h_advance(id);
            previous = Some(id);
        }
        (glyphs, x)
    }
}

impl<B: DrawingBackend> DrawingBackend for Glyphs<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        let (_, width) = self.layout(style.size() as f32, text);
        Ok((width as u32, (style.size() / 1.24) as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let size = style.size() as f32;
        let (glyphs, width) = self.layout(size, text);
        // The box plotters measures (its layout box: the advances wide,
        // size / 1.24 high), anchored as the style says; the baseline half
        // the size down, where plotters puts it.
        let (width, height) = (width as i32, (size / 1.24) as i32);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.inner.get_size();
        let font = self.font.as_scaled(PxScale::from(size));
        let mut pixels = Vec::new();
        for (id, x) in glyphs {
            let glyph = id.with_scale_and_position(PxScale::from(size), point(x, size / 2.0));
            let Some(outline) = font.outline_glyph(glyph) else { continue };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                pixels.push((bounds.min.x as i32 + gx as i32, bounds.min.y as i32 + gy as i32, coverage));
            });
        }
        for (x, y, coverage) in pixels {
            let (x, y) = transform.transform(x + dx, y + dy);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h && coverage > 0.0 {
                let pixel = BackendColor { alpha: color.alpha * f64::from(coverage.min(1.0)), rgb: color.rgb };
                self.inner.draw_pixel((x, y), pixel)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    /// Columns of `text` drawn black on white at `x = 10` through [`Glyphs`]
    /// that hold ink.
    fn inked_columns(text: &str, size: u32) -> Vec<bool> {
        super::super::fonts();
        let (w, h) = (300u32, 80u32);
        let mut buffer = vec![255u8; (w * h * 3) as usize];
        {
            let area = Glyphs::new(BitMapBackend::with_buffer(&mut buffer, (w, h))).into_drawing_area();
            area.draw(&Text::new(text, (10, 4), (super::super::FONT, size).into_font().color(&BLACK))).unwrap();
            area.present().unwrap();
        }
        (0..w).map(|x| (0..h).any(|y| buffer[((y * w + x) * 3) as usize] < 200)).collect()
    }

    #[test]
    fn a_glyph_starts_at_its_side_bearing_and_a_space_has_its_width() {
        // The font's own metric is the oracle: the ink of "H" begins its
        // left side bearing after the pen (plotters' text begins it at the
        // pen itself).
        let font = FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT).unwrap();
        let scaled = font.as_scaled(PxScale::from(40.0));
        let bearing = scaled.h_side_bearing(scaled.glyph_id('H'));
        assert!(bearing >= 2.0, "a bearing of {bearing} px would not tell the layouts apart");
        let first = inked_columns("H", 40).iter().position(|&c| c).unwrap() as f32;
        assert!(
            (first - (10.0 + bearing)).abs() <= 1.0,
            "ink from column {first}, the bearing puts it at {}",
            10.0 + bearing
        );
        // A space is a space: "a b" spans its advance more than "ab".
        let span = |text: &str| {
            let columns = inked_columns(text, 24);
            columns.iter().rposition(|&c| c).unwrap() - columns.iter().position(|&c| c).unwrap()
        };
        let space = font.as_scaled(PxScale::from(24.0)).h_advance(font.glyph_id(' '));
        let widened = (span("a b") - span("ab")) as f32;
        assert!((widened - space).abs() <= 1.5, "the space widened the text by {widened} px, its advance is {space}");
    }
}
