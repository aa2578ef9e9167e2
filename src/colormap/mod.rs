//! The heatmaps' colour maps (matplotlib's perceptually uniform ones, as 256-entry tables)
//! and the `--color` choice: what the flags name, below the terminal code that draws them.

mod tables;

pub use tables::{CIVIDIS, INFERNO, MAGMA, VIRIDIS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Colormap {
    Viridis,
    Magma,
    Inferno,
    Cividis,
}

impl Colormap {
    pub const ALL: [Colormap; 4] = [Colormap::Viridis, Colormap::Magma, Colormap::Inferno, Colormap::Cividis];

    pub fn name(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Magma => "magma",
            Colormap::Inferno => "inferno",
            Colormap::Cividis => "cividis",
        }
    }

    pub fn next(self) -> Colormap {
        let i = Colormap::ALL.iter().position(|&c| c == self).unwrap_or(0);
        Colormap::ALL[(i + 1) % Colormap::ALL.len()]
    }

    fn table(self) -> &'static [[u8; 3]; 256] {
        match self {
            Colormap::Viridis => &VIRIDIS,
            Colormap::Magma => &MAGMA,
            Colormap::Inferno => &INFERNO,
            Colormap::Cividis => &CIVIDIS,
        }
    }

    /// RGB at t in [0, 1].
    pub fn rgb(self, t: f64) -> [u8; 3] {
        let i = (t.clamp(0.0, 1.0) * 255.0).round() as usize;
        self.table()[i]
    }
}

/// ColorBrewer's RdBu (11 classes), blue to red: the diverging map of signed differences.
const RD_BU: [[u8; 3]; 11] = [
    [0x05, 0x30, 0x61],
    [0x21, 0x66, 0xac],
    [0x43, 0x93, 0xc3],
    [0x92, 0xc5, 0xde],
    [0xd1, 0xe5, 0xf0],
    [0xf7, 0xf7, 0xf7],
    [0xfd, 0xdb, 0xc7],
    [0xf4, 0xa5, 0x82],
    [0xd6, 0x60, 0x4d],
    [0xb2, 0x18, 0x2b],
    [0x67, 0x00, 0x1f],
];

/// The diverging map at t in [0, 1]: 0 blue (most negative), 0.5 neutral, 1 red; linear
/// between ColorBrewer's RdBu classes.
pub fn diverging(t: f64) -> [u8; 3] {
    let x = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.5 } * (RD_BU.len() - 1) as f64;
    let i = (x.floor() as usize).min(RD_BU.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + f * (f64::from(b) - f64::from(a))).round() as u8;
    let (a, b) = (RD_BU[i], RD_BU[i + 1]);
    [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])]
}

/// `--color`: let NO_COLOR and COLORTERM decide, or force a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// NO_COLOR, then COLORTERM decide
    Auto,
    /// 24-bit colour
    #[value(alias = "24bit")]
    Truecolor,
    /// the xterm-256 palette
    #[value(name = "256", alias = "ansi256")]
    Ansi256,
    /// no colour: glyphs and modifiers only
    #[value(alias = "never")]
    None,
}
