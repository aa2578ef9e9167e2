//! The layers list: its order (`o` cycles the sort key) and cursor.

use crate::pipeline::average::Averages;

use super::data::LayerStat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    File,
    Mean,
    Max,
    Size,
    Selected,
}

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::File => "file order",
            SortKey::Mean => "mean",
            SortKey::Max => "max",
            SortKey::Size => "size",
            SortKey::Selected => "selected",
        }
    }

    fn next(self) -> SortKey {
        match self {
            SortKey::File => SortKey::Mean,
            SortKey::Mean => SortKey::Max,
            SortKey::Max => SortKey::Size,
            SortKey::Size => SortKey::Selected,
            SortKey::Selected => SortKey::File,
        }
    }
}

pub struct Layers {
    sort: SortKey,
    /// Parameter indices in display order.
    order: Vec<usize>,
    cursor: usize,
}

impl Default for Layers {
    fn default() -> Self {
        Layers { sort: SortKey::File, order: Vec::new(), cursor: 0 }
    }
}

impl Layers {
    pub fn sort_key(&self) -> SortKey {
        self.sort
    }

    pub fn order(&self) -> &[usize] {
        &self.order
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The parameter under the cursor.
    pub fn current(&self) -> Option<usize> {
        self.order.get(self.cursor).copied()
    }

    /// New parameters: file order, cursor on `start`.
    pub fn reset(&mut self, n: usize, start: usize) {
        self.order = (0..n).collect();
        self.cursor = start.min(n.saturating_sub(1));
    }

    /// Moves the cursor to row `i`; true when it moved.
    pub fn set_cursor(&mut self, i: usize) -> bool {
        let i = i.min(self.order.len().saturating_sub(1));
        let moved = i != self.cursor;
        self.cursor = i;
        moved
    }

    /// Moves the cursor to parameter `p`; true when it is listed.
    pub fn show(&mut self, p: usize) -> bool {
        match self.order.iter().position(|&x| x == p) {
            Some(i) => {
                self.cursor = i;
                true
            }
            None => false,
        }
    }

    pub fn cycle_sort(&mut self) {
        self.sort = self.sort.next();
    }

    /// Orders the layers by the sort key (largest first, ties in file order), keeping the
    /// cursor on its parameter.
    pub fn sort(&mut self, avgs: &Averages, stats: &[LayerStat], selected: &dyn Fn(usize) -> usize) {
        let current = self.current();
        let key = |i: usize| -> f64 {
            match self.sort {
                SortKey::File => -(i as f64),
                SortKey::Mean => stats.get(i).map_or(0.0, |s| s.mean),
                SortKey::Max => stats.get(i).map_or(0.0, |s| s.max),
                SortKey::Size => avgs.params[i].data.len() as f64,
                SortKey::Selected => selected(i) as f64,
            }
        };
        let mut order: Vec<usize> = (0..avgs.params.len()).collect();
        order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
        self.order = order;
        if let Some(c) = current {
            self.cursor = self.order.iter().position(|&i| i == c).unwrap_or(0);
        }
    }
}
