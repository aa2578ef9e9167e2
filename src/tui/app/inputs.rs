//! The input view's data: the input saliency means of the finished run and the names given
//! for the observation's values.

use std::sync::Arc;

use crate::pipeline::input_saliency::InputMeans;
use crate::study::features::FeatureNames;

#[derive(Default)]
pub struct InputsPart {
    means: Option<Arc<InputMeans>>,
    names: Option<FeatureNames>,
}

impl InputsPart {
    pub fn new(names: Option<FeatureNames>) -> InputsPart {
        InputsPart { means: None, names }
    }

    pub fn means(&self) -> Option<&Arc<InputMeans>> {
        self.means.as_ref()
    }

    pub fn names(&self) -> Option<&FeatureNames> {
        self.names.as_ref()
    }

    pub fn set_means(&mut self, means: Option<Arc<InputMeans>>) {
        self.means = means;
    }
}
