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
