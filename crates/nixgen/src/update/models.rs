//! A Python plugin's default models, pinned from the Hugging Face Hub
//! ([`crate::hf`]). A Hub that cannot be asked keeps the pins the tree
//! records, and says so; it never drops them silently.

use super::offline::Old;
use crate::classify::Pin;
use crate::hf::{Hub, ModelFile};

/// The need the scan records for a plugin that downloads from the Hub.
pub(super) const HUB_NEED: &str = "model downloads from huggingface.co";

/// Pins `models` (directory names under the plugin's own directory of the
/// repository) into `pin.offline`; returns whether they are covered by pins
/// (fresh, or the tree's when the Hub failed), so that the Hub need goes.
pub(super) async fn pin_models(
    pin: &mut Pin,
    models: &[String],
    old: Option<&Old>,
    hub: &Hub,
    warnings: &mut Vec<String>,
) -> bool {
    match fetch(hub, pin.name.bare(), models).await {
        Ok(files) => {
            pin.offline.models = Some(files);
            true
        }
        Err(e) => match old.and_then(|o| o.models_block.clone()) {
            Some(block) => {
                warnings.push(format!(
                    "models not refreshed from {}: {e:#}; the previous model pins are kept",
                    hub.endpoint()
                ));
                pin.offline.models_block = Some(block);
                true
            }
            None => {
                warnings.push(format!(
                    "models not pinned from {}: {e:#}; the plugin downloads {} at start",
                    hub.endpoint(),
                    models.join(", ")
                ));
                false
            }
        },
    }
}

async fn fetch(
    hub: &Hub,
    plugin: &str,
    models: &[String],
) -> Result<Vec<ModelFile>, crate::hf::HubError> {
    let revision = hub.revision().await?;
    let mut files = Vec::new();
    for model in models {
        files.extend(hub.files(&revision, &format!("{plugin}/{model}")).await?);
    }
    Ok(files)
}
