//! The app's plan and the attribute map: the small types the model and the limits share, in a
//! module of their own so that neither imports the other for them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type Attrs = Map<String, Value>;

/// Service plan of an app. It chooses the default limits (see `Limits::for_plan` in `limits.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// The vendors' development tier: low rate limits.
    Dev,
    /// The commercial defaults.
    #[default]
    Standard,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Dev => "dev",
            Plan::Standard => "standard",
        }
    }
    pub fn parse(s: &str) -> Option<Plan> {
        match s {
            "dev" => Some(Plan::Dev),
            "standard" => Some(Plan::Standard),
            _ => None,
        }
    }
}
