//! Colours: perceptual colormaps, truecolor / xterm-256 / no-colour output.

use ratatui::style::Color;

pub use crate::colormap::{ColorChoice, Colormap};

/// What the terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    TrueColor,
    Ansi256,
    /// NO_COLOR: glyphs only.
    None,
}

impl ColorMode {
    /// What `--color` asks for.
    pub fn from_choice(choice: ColorChoice) -> ColorMode {
        match choice {
            ColorChoice::Auto => ColorMode::detect(),
            ColorChoice::Truecolor => ColorMode::TrueColor,
            ColorChoice::Ansi256 => ColorMode::Ansi256,
            ColorChoice::None => ColorMode::None,
        }
    }

    /// From the environment: NO_COLOR (any non-empty value) wins; COLORTERM=truecolor|24bit
    /// means 24-bit colour; otherwise the xterm-256 palette.
    pub fn detect() -> ColorMode {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return ColorMode::None;
        }
        match std::env::var("COLORTERM").map(|v| v.to_ascii_lowercase()) {
            Ok(v) if v == "truecolor" || v == "24bit" => ColorMode::TrueColor,
            _ => ColorMode::Ansi256,
        }
    }

    /// The terminal colour for an RGB value in this mode (`Reset` without colour).
    pub fn color(self, rgb: [u8; 3]) -> Color {
        match self {
            ColorMode::TrueColor => Color::Rgb(rgb[0], rgb[1], rgb[2]),
            ColorMode::Ansi256 => Color::Indexed(xterm256(rgb)),
            ColorMode::None => Color::Reset,
        }
    }
}

const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

fn cube_index(v: u8) -> usize {
    // Nearest of the 6 cube levels.
    let mut best = 0;
    for (i, &c) in CUBE.iter().enumerate() {
        if (i32::from(c) - i32::from(v)).abs() < (i32::from(CUBE[best]) - i32::from(v)).abs() {
            best = i;
        }
    }
    best
}

fn dist2(a: [u8; 3], b: [u8; 3]) -> i32 {
    a.iter().zip(b.iter()).map(|(&x, &y)| (i32::from(x) - i32::from(y)).pow(2)).sum()
}

/// The nearest xterm-256 colour: the 6x6x6 cube (16-231) or the grey ramp (232-255).
pub fn xterm256(rgb: [u8; 3]) -> u8 {
    let (r, g, b) = (cube_index(rgb[0]), cube_index(rgb[1]), cube_index(rgb[2]));
    let cube = [CUBE[r], CUBE[g], CUBE[b]];
    let cube_code = 16 + 36 * r + 6 * g + b;
    let avg = (u32::from(rgb[0]) + u32::from(rgb[1]) + u32::from(rgb[2])) / 3;
    let grey_i = if avg < 8 { 0 } else { ((avg - 8) / 10).min(23) };
    let grey_v = (8 + 10 * grey_i) as u8;
    if dist2(rgb, [grey_v; 3]) < dist2(rgb, cube) {
        232 + grey_i as u8
    } else {
        cube_code as u8
    }
}

/// Relative luminance (0..1), to pick a readable marker colour on top of a cell.
pub fn luminance(rgb: [u8; 3]) -> f64 {
    (0.2126 * f64::from(rgb[0]) + 0.7152 * f64::from(rgb[1]) + 0.0722 * f64::from(rgb[2])) / 255.0
}

/// Overlay colours, chosen to stand out on all four colormaps.
pub const GUARANTEED_RGB: [u8; 3] = [255, 40, 90];
pub const ADDITIONAL_RGB: [u8; 3] = [0, 220, 255];
/// Two agents compared, on the diverging map (white, red, blue): both, only A, only B.
pub const BOTH_RGB: [u8; 3] = [255, 215, 0];
pub const ONLY_A_RGB: [u8; 3] = [0, 200, 60];
pub const ONLY_B_RGB: [u8; 3] = [170, 0, 255];
pub const EMPTY_RGB: [u8; 3] = [40, 40, 40];

/// Glyph ramp for NO_COLOR heatmaps, darkest first.
pub const GLYPH_RAMP: [char; 5] = [' ', '░', '▒', '▓', '█'];

pub fn glyph(t: f64) -> char {
    let i = (t.clamp(0.0, 1.0) * (GLYPH_RAMP.len() as f64 - 1.0)).round() as usize;
    GLYPH_RAMP[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xterm_mapping() {
        assert_eq!(xterm256([0, 0, 0]), 16);
        assert_eq!(xterm256([255, 255, 255]), 231);
        assert_eq!(xterm256([255, 0, 0]), 196);
        assert_eq!(xterm256([128, 128, 128]), 244);
        assert_eq!(xterm256([68, 1, 84]), 53);
    }

    #[test]
    fn ramps() {
        assert_eq!(Colormap::Viridis.rgb(0.0), [68, 1, 84]);
        assert_eq!(Colormap::Viridis.rgb(1.0), [253, 231, 37]);
        assert_eq!(crate::colormap::diverging(0.0), [0x05, 0x30, 0x61]);
        assert_eq!(crate::colormap::diverging(0.5), [0xf7, 0xf7, 0xf7]);
        assert_eq!(crate::colormap::diverging(1.0), [0x67, 0x00, 0x1f]);
        assert_eq!(crate::colormap::diverging(f64::NAN), [0xf7, 0xf7, 0xf7]);
        assert_eq!(glyph(0.0), ' ');
        assert_eq!(glyph(1.0), '█');
        assert_eq!(<Colormap as clap::ValueEnum>::from_str("MAGMA", true), Ok(Colormap::Magma));
    }
}
